"""What the workflow knows about: data sets, tables (with the metrics that fill them) and figures.

One registry per concept. Everything else derives from these entries: the config schema's allowed values
(`dataset`, `tables`, `figures`, the `metrics:` block), the rules' wildcard constraints, which job computes
which table, the Parquet column types, the report's captions and `docs/tables.md`.

Entries name their implementation by a dotted path ("memorization.metrics:csr_frame") rather than holding
the function, so that reading the registry imports neither torch nor matplotlib: Snakemake reads it every
time it builds the DAG. An analysis of your own registers its entries from a Python file listed under
`analyses:` in the config, and may hand over the function itself (see docs/extending.md).

This module imports nothing beyond the standard library.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# ----------------------------------------------------------------------------- data sets


@dataclass(frozen=True)
class Dataset:
    """A data set the workflow can train on.

    spec_defaults: run-spec values that depend on the data set's scale (what a spec on this data set gets
      when neither the spec nor the config's `defaults:` set them).
    metric_defaults: per metric family, settings that depend on the data set's scale (LASS's r on 8x8 digits
      with 17 grey levels is not r on CIFAR-10); the config's `metrics:` block overrides them.
    """

    name: str
    load: str  # "module:function" (root, download) -> (train Split, validation Split, number of classes)
    n_train: int  # examples in the training split (train_size may not exceed it)
    description: str
    shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W) of an image
    n_val: int = 10000  # examples in the validation split
    n_classes: int = 10
    files: tuple[str, ...] = ()  # the raw files under data_root it is read from (none: bundled with a package)
    standardize: bool = False  # per-channel standardisation with the clean training statistics
    spec_defaults: dict = field(default_factory=dict)
    metric_defaults: dict = field(default_factory=dict)


# The digits set is the CPU-sized embedded default, so its defaults are CPU-sized too. Each is measured:
# - LASS at the paper's r = 0.3 finds no critical validation digit on a real-data model (CSR 0.0; random
#   inputs 0.07, random labels 0.09): one grey level of a digit is 255/16 ≈ 16 on the 0-255 scale. r = 8,
#   about half a grey level, gives 0.05 / 0.89 / 0.94; alpha and beta keep the paper's ratios to r.
# - 20 instead of 100 LASS iterations: CSR 0.047 vs 0.047 (real data) and 0.66 vs 0.67 (40% random labels)
#   on the final CNNs, at a third to a fifth of the cost: after ~2 sign steps a point sits in a corner of
#   the box and only the noise moves it. 150 points per split.
# - Loss sensitivity every 25th step of the window (the authors: every 2nd): the job's cost is set by the
#   replayed graph (T steps), 186 s at stride 25 vs 183 s at 20 for five runs; per-class every 100th.
# - Hidden widths: 256 units (the paper's 4096 on 64-pixel inputs is ~60x the cost per step for nothing).
DIGITS_LASS = {"r": 8.0, "alpha": 6.67, "beta": 5.33}

MNIST_FILES = tuple(
    f"MNIST/raw/{f}-ubyte" for f in ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")
)
DATASETS: dict[str, Dataset] = {}


def register_dataset(dataset: Dataset) -> Dataset:
    DATASETS[dataset.name] = dataset
    return dataset


for _dataset in (
    Dataset(
        "digits",
        "memorization.data:load_digits",
        1297,
        "scikit-learn's 1,797 bundled 8x8 digits, 17 grey levels scaled to [0, 1]; a fixed permutation, "
        "1,297 train / 500 validate. No download; the embedded default.",
        shape=(1, 8, 8),
        n_val=500,
        spec_defaults={
            "width": 256,
            "cnn_channels": 16,
            "cnn_dense": [64, 32],
            # BatchNorm forgets in the same fraction of an epoch as the paper's CNN on CIFAR-10 (100 steps of
            # 391 at batch 128): 10 steps of 41. At 0.99 the running statistics lagged 2.5 digits epochs
            # behind the weights, and the real-data CNN's eval-mode validation accuracy went 0.70, 0.27,
            # 0.42 over epochs 1-3 (measured).
            "batchnorm_momentum": 0.9,
            **{f"adversarial_{k}": v for k, v in DIGITS_LASS.items()},
        },
        metric_defaults={
            "csr": {**DIGITS_LASS, "max_iter": 20, "points": 150},
            "sensitivity": {"stride": 25},
            "class_sensitivity": {"stride": 100},
        },
    ),
    Dataset(
        "mnist",
        "memorization.data:load_mnist",
        50000,
        "MNIST's 60k training file: the first 50k train, the last 10k validate (as mnist.pkl.gz).",
        files=MNIST_FILES,
    ),
    Dataset(
        "mnist14",
        "memorization.data:load_mnist14",
        50000,
        "MNIST averaged over 2x2 blocks to 14x14 (the authors' loss-sensitivity set-up).",
        shape=(1, 14, 14),
        files=MNIST_FILES,
        spec_defaults={"width": 32},
    ),
    Dataset(
        "cifar10",
        "memorization.data:load_cifar10",
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


# ----------------------------------------------------------------------------- tables

# Column types: pandas dtype names. "Int64"/"Float64" are the nullable kinds (null where a value does not
# apply); each maps to one Parquet type, so every file of a table has the same schema whatever the config.
ARROW_TYPES = {
    "string": "string",
    "int64": "int64",
    "Int64": "int64",
    "float64": "float64",
    "Float64": "float64",
    "bool": "bool",
}


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    description: str


def columns(*spec) -> tuple[Column, ...]:
    """Columns from (name, dtype, description) triples (or Columns, kept as they are)."""
    return tuple(c if isinstance(c, Column) else Column(*c) for c in spec)


IDENTITY = columns(
    ("experiment", "string", "the config's experiment the row belongs to"),
    ("run_id", "string", "hash of the run's spec with default values left out: results/runs/<run_id>/"),
    (
        "config_id",
        "string",
        "hash of the run's spec without its seeds and noise draw: the runs of one grid "
        "point share it, also when each seed has its own noise draw (noise_draws: per_seed)",
    ),
    ("seed", "int64", "the seed (initialisation, batch order, regulariser draws)"),
    ("dataset", "string", "the data set's registry name"),
    ("arch", "string", "mlp | cnn"),
    ("width", "Int64", "MLP hidden units per layer; null for the CNN"),
    ("train_size", "int64", "training examples of the run"),
    ("input_noise", "string", "none | gaussian | uniform"),
    ("input_noise_fraction", "float64", "fraction of training inputs replaced by noise (0 for none)"),
    ("label_noise", "string", "none | random | identity"),
    ("label_noise_fraction", "float64", "fraction of training labels replaced (0 for none)"),
    (
        "regularizer",
        "string",
        "none | dropout | input_dropout | input_noise | hidden_noise | weight_decay | dropout_adversarial",
    ),
    ("reg_strength", "float64", "the regulariser's rate, std or lambda (0 for none)"),
)

SENSITIVITY_SETTINGS = columns(
    ("window", "int64", "steps averaged before each checkpoint"),
    ("stride", "int64", "every stride-th step of the window"),
    ("norm", "string", "l1 (mean absolute value over input dimensions) | l2 | linf"),
    ("horizon", "Int64", "steps unrolled before the window; null = from initialisation"),
)


@dataclass(frozen=True)
class Table:
    """A contract table: results/tables/<experiment>/<name>.parquet, one row per `row`.

    stage: "train" (written by the training job), "metric" (computed from one finished run's files by
      `compute(spec, data, run_dir, settings, device) -> DataFrame`), or "summary" (computed from the same
      run's `source` table by `compute(frame) -> DataFrame`).
    columns: what the table adds to the identity columns; all of them are required.
    settings: the name of the schema definition ($defs) of the metric's settings, or a mapping of
      JSON-schema properties (each with a `default`); they become the config's `metrics.<name>` block.
    device: the job may use a GPU (it then leases one).
    """

    name: str
    stage: str
    columns: tuple[Column, ...]
    row: str
    description: str
    compute: str | Callable | None = None
    source: str | None = None
    settings: str | dict | None = None
    device: bool = False

    def dtypes(self) -> dict[str, str]:
        return {c.name: c.dtype for c in (*IDENTITY, *self.columns)}


TABLES: dict[str, Table] = {}
FIGURES: dict[str, Figure] = {}


def register_table(table: Table) -> Table:
    if table.stage not in ("train", "metric", "summary"):
        raise ValueError(f"table {table.name}: stage must be train, metric or summary, not {table.stage!r}")
    if (table.stage == "summary") != (table.source is not None):
        raise ValueError(f"table {table.name}: a summary table, and only one, names its source table")
    if table.stage != "train" and table.compute is None:
        raise ValueError(f"table {table.name}: a {table.stage} table needs `compute`")
    if table.source is not None and table.source not in TABLES:
        raise ValueError(f"table {table.name}: source table {table.source!r} is not registered")
    for column in table.columns:
        if column.dtype not in ARROW_TYPES:
            raise ValueError(
                f"table {table.name}, column {column.name}: dtype {column.dtype!r} is not one of "
                f"{', '.join(ARROW_TYPES)}"
            )
    clash = {c.name for c in IDENTITY} & {c.name for c in table.columns}
    if clash:
        raise ValueError(f"table {table.name}: columns {sorted(clash)} are identity columns already")
    TABLES[table.name] = table
    return table


for _table in (
    Table(
        "training",
        "train",
        columns(
            ("epoch", "float64", "step / steps per epoch; 0 is the initialisation"),
            ("step", "int64", "SGD steps taken"),
            ("train_loss", "float64", "eval-mode mean loss on the training set as trained (noise included)"),
            ("train_acc", "float64", "eval-mode accuracy on the training set against its training labels"),
            ("val_loss", "float64", "mean loss on the clean validation split (NaN for identity labels)"),
            ("val_acc", "float64", "accuracy on the clean validation split (NaN for identity labels)"),
            (
                "batch_loss",
                "float64",
                "what a training loop reports: the train-mode loss (regulariser active) "
                "averaged over the epoch's batches so far; NaN at initialisation",
            ),
            ("batch_acc", "float64", "train-mode accuracy averaged likewise over the epoch's batches"),
        ),
        "run, seed, evaluation",
        "Loss and accuracy at every evaluation (every `log_every` epochs and the end).",
    ),
    Table(
        "convergence",
        "train",
        columns(
            ("epochs_to_fit", "Float64", "first evaluated epoch at 100% training accuracy; null if never"),
            ("max_epochs", "float64", "the training budget in epochs (the cap of a run that stops at fit)"),
        ),
        "run, seed",
        "Time to convergence (Fig. 6).",
    ),
    Table(
        "examples",
        "metric",
        columns(
            ("epoch", "float64", "as in training"),
            ("step", "int64", "as in training"),
            ("example", "int64", "index of the training example"),
            ("correct", "bool", "eval-mode prediction equals the training label"),
            (
                "is_noisy",
                "bool",
                "the example's input or label was replaced (a random label may equal the true "
                "one by chance: about 1/C of them do)",
            ),
        ),
        "run, seed, evaluation, training example",
        "Per-example correctness (Fig. 1).",
        compute="memorization.train:examples_table",
    ),
    Table(
        "filters",
        "metric",
        columns(
            ("step", "int64", "checkpoint step (the first and the last)"),
            ("filter", "int64", "CNN filter, or MLP first-layer unit"),
            ("channel", "int64", "input channel"),
            ("row", "int64", "row of the 5x5 filter (MLP: of the input image)"),
            ("col", "int64", "column"),
            ("value", "float64", "the weight"),
        ),
        "run, seed, checkpoint, weight",
        "First-layer weights at the first and last checkpoint (Fig. 2).",
        compute="memorization.metrics:filters_frame",
    ),
    Table(
        "sensitivity",
        "metric",
        columns(
            ("step", "int64", "checkpoint step T"),
            ("example", "int64", "index of the training example x"),
            ("sensitivity", "float64", "loss sensitivity: mean over the window of ||dL_t/dx|| through the SGD updates"),
            ("is_noisy", "bool", "as in examples"),
            *SENSITIVITY_SETTINGS,
        ),
        "run, seed, checkpoint, training example",
        "Loss sensitivity of every training example (Fig. 3).",
        compute="memorization.metrics:sensitivity_frame",
        settings="sensitivity_settings",
        device=True,
    ),
    Table(
        "gini",
        "summary",
        columns(
            ("step", "int64", "checkpoint step T"),
            ("gini", "float64", "Gini coefficient of the loss sensitivity over the run's training examples"),
            *SENSITIVITY_SETTINGS,
        ),
        "run, seed, checkpoint",
        "Concentration of loss sensitivity (Fig. 3).",
        compute="memorization.analysis:gini_frame",
        source="sensitivity",
    ),
    Table(
        "class_sensitivity",
        "metric",
        columns(
            ("step", "int64", "checkpoint step T"),
            ("class_i", "int64", "class of the loss term differentiated"),
            ("class_j", "int64", "class of the training inputs it is differentiated against"),
            (
                "value",
                "float64",
                "mean over the window and over inputs of class j of ||dL_t(y=i)/dx|| (NaN: "
                "no example of class i in the authors' variant's batch)",
            ),
            *SENSITIVITY_SETTINGS,
            ("variant", "string", "paper (the paper's formula) | authors (the authors' code)"),
        ),
        "run, seed, checkpoint, class pair",
        "Per-class loss sensitivity (Fig. 4).",
        compute="memorization.metrics:class_sensitivity_frame",
        settings="class_sensitivity_settings",
        device=True,
    ),
    Table(
        "csr",
        "metric",
        columns(
            ("epoch", "float64", "checkpoint epoch"),
            ("step", "int64", "checkpoint step"),
            ("split", "string", "val | train"),
            ("csr", "float64", "critical sample ratio: n_critical / n_points"),
            ("n_points", "int64", "points searched"),
            ("n_critical", "int64", "points whose prediction LASS flipped within the box"),
            ("mean_iterations", "float64", "mean LASS iteration of the flips (NaN if none)"),
            ("max_distance", "float64", "largest |x_hat - x| found, 0-255 scale (<= lass_r, checked)"),
            ("lass_r", "float64", "box radius, 0-255 scale"),
            ("lass_alpha", "float64", "sign-step size, 0-255 scale"),
            ("lass_beta", "float64", "noise std, 0-255 scale"),
            ("lass_max_iter", "int64", "iteration cap"),
            ("lass_stop", "string", "example (Algorithm 1) | global (the authors' code)"),
        ),
        "run, seed, checkpoint, split",
        "Critical sample ratio by LASS (Figs 7-9).",
        compute="memorization.metrics:csr_frame",
        settings="csr_settings",
        device=True,
    ),
):
    register_table(_table)


def table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; registered: {', '.join(TABLES)}") from None


def tables_of_stage(stage: str) -> list[str]:
    return [name for name, t in TABLES.items() if t.stage == stage]


# ----------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Figure:
    """A figure: results/figures/<name>.png and .pdf, drawn by `draw(*frames) -> (figure, findings)` from
    the named tables of every experiment that lists it (frames in the order of `tables`).
    caption: what the figure shows and what the paper claims (reStructuredText, shown in the report)."""

    name: str
    tables: tuple[str, ...]
    draw: str | Callable
    caption: str


def register_figure(figure: Figure) -> Figure:
    unknown = [t for t in figure.tables if t not in TABLES]
    if unknown:
        raise ValueError(f"figure {figure.name}: tables {unknown} are not registered")
    FIGURES[figure.name] = figure
    return figure


def _paper_figure(name: str, tables, caption: str) -> None:
    register_figure(Figure(name, tuple(tables), f"memorization.figures:{name}", " ".join(caption.split())))


_paper_figure(
    "fig01_difficulty",
    ["examples"],
    """
    **Fig. 1, per-example difficulty.** Per-example misclassification rate after one epoch, averaged over many
    independently initialised and shuffled runs, sorted; dashed: what random inputs would give if every
    example were equally hard (binomial). *Paper (§3.1):* on real data difficulty varies between examples
    (easy and hard examples); random inputs match the binomial curve; random labels lie in between.""",
)
_paper_figure(
    "fig02_filters",
    ["filters"],
    """
    **Fig. 2, first-layer filters** at the end of training on real data, random labels and random inputs
    (seed 0, each filter scaled to its range). *Paper (§3.1):* filters learned on random labels are not white
    noise: training on noise still picks up shared structure of the images. The number above each panel is
    the correlation of neighbouring weights of what training changed (about 0 for white noise).""",
)
_paper_figure(
    "fig03_gini",
    ["gini"],
    """
    **Fig. 3, concentration of loss sensitivity.** Gini coefficient, across the training examples, of each
    example's loss sensitivity (its influence on the loss through the SGD updates, averaged over a window of
    steps), against SGD steps. *Paper (§3.2-3.3):* higher for real data than for random inputs at every
    step, also when every example is its own class; 50% real data lies in between.""",
)
_paper_figure(
    "fig04_class_sensitivity",
    ["class_sensitivity"],
    """
    **Fig. 4, per-class loss sensitivity.** Cell (i, j): sensitivity of the class-i term of the loss to
    training inputs of class j, through the SGD updates, at the end of training (log colour scale).
    *Paper (§3.4):* the diagonal dominates, but real data spreads more mass off the diagonal (patterns shared
    across classes), so the diagonal/off-diagonal ratio D is smaller for real data. How much the ordering
    depends on the number of steps T: "What this run shows" gives D at every computed checkpoint (setting
    `metrics.class_sensitivity.at`); `variant: authors` computes the authors' code's definition instead.""",
)
_paper_figure(
    "fig05_capacity",
    ["training"],
    """
    **Fig. 5, validation accuracy against capacity.** Best validation accuracy (clean data) against hidden
    units per layer, one curve per fraction of training inputs replaced by Gaussian noise (mean and band over
    seeds). *Paper (§4):* on clean data accuracy is near its best at a moderate width; with noise more units
    are needed to reach the best validation accuracy.""",
)
_paper_figure(
    "fig06_convergence",
    ["convergence"],
    """
    **Fig. 6, time to convergence.** Epochs until the whole training set is classified correctly, against
    hidden units (left) and training-set size (right), per input-noise level; hollow circles: runs that never
    fit (drawn at the cap). *Paper (§4):* less capacity or more data slows training, much more for noisy data:
    extra units help real data less, and time to fit grows much faster with the data set size for noise.""",
)
_paper_figure(
    "fig07_mlp_noise",
    ["training", "csr"],
    """
    **Fig. 7, the MLP under partial noise.** Training (solid) and validation (dotted) accuracy, and the
    validation critical sample ratio, per epoch, for 0-80% of the training inputs (top) or labels (bottom)
    replaced by noise. *Paper (§4.1):* CSR is higher and final and best validation accuracy lower for noisier
    data; with label noise, validation accuracy peaks before the noisy labels are fit, then falls while CSR
    rises: patterns first, memorisation afterwards.""",
)
_paper_figure(
    "fig08_cnn_noise",
    ["training", "csr"],
    """
    **Fig. 8, the CNN under partial noise.** As Fig. 7, with the CNN. *Paper (§4.1):* the same conclusions as
    Fig. 7: higher CSR and lower validation accuracy with more noise; for label noise an early validation
    peak, then a decline and a CSR surge while the noise is memorised.""",
)
_paper_figure(
    "fig09_csr_random",
    ["csr"],
    """
    **Fig. 9, critical sample ratio during training** of models trained on real data, random inputs and random
    labels (mean and band over seeds); dashed: the training split of the real-data model. *Paper (§4.1):* much
    higher for the models fit to noise (a more complex decision surface); all rise, then plateau. Footnote 5:
    training-set CSR on real data first rises, then falls.""",
)
_paper_figure(
    "fig10_regularizers",
    ["training"],
    """
    **Fig. 10, regularisers: memorisation against generalisation.** For each regulariser across its strengths
    (labelled points; every curve starts at the unregularised point): final training accuracy on random
    labels (x) against best validation accuracy when trained on real data (y). *Paper (§5):* a flat curve is
    best; dropout hinders memorisation most for the least cost, best with adversarial training; weight decay
    and Gaussian noise lose more validation accuracy for the same effect.""",
)
_paper_figure(
    "fig11_regularizer_curves",
    ["training"],
    """
    **Fig. 11, training loss under regularisers**, per epoch, on random labels (left) and real data (right).
    *Paper (§5):* the vertical order of the regularisers differs between random labels and real data: they
    differ in how much they slow memorisation compared with learning.""",
)


def figure(name: str) -> Figure:
    try:
        return FIGURES[name]
    except KeyError:
        raise KeyError(f"unknown figure {name!r}; registered: {', '.join(FIGURES)}") from None


# ----------------------------------------------------------------------------- implementations, analyses


def resolve(target: str | Callable) -> Callable:
    """The function an entry names: itself, or "module:function" imported on first use."""
    if callable(target):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def load_analyses(paths) -> None:
    """Import the Python files of a config's `analyses:`; each registers its tables and figures. A file is
    imported once per process (its module name is derived from its resolved path)."""
    for path in paths:
        path = Path(path).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"analysis file {path} (config key `analyses`) does not exist")
        name = f"memorization_analysis_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)


# ----------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, tested on the tables of its figure: `evaluate(tables) -> claims.Verdict`,
    with `tables` the figure's tables by name (runs shared by two experiments counted once)."""

    name: str
    figure: str
    statement: str  # what the paper says
    statistic: str  # what is computed from the tables
    rule: str  # when the claim holds
    evaluate: str | Callable


CLAIMS: dict[str, Claim] = {}


def register_claim(claim: Claim) -> Claim:
    if claim.figure not in FIGURES:
        raise ValueError(f"claim {claim.name}: figure {claim.figure!r} is not registered")
    CLAIMS[claim.name] = claim
    return claim


for _claim in (
    (
        "fig01_real_uneven",
        "fig01_difficulty",
        "Real data has easy and hard examples: difficulty varies far more than chance.",
        "variance of P(correct) across examples / binomial variance",
        "real data >= 2x random inputs",
    ),
    (
        "fig01_random_inputs_binomial",
        "fig01_difficulty",
        "On random inputs every example is equally hard: the curve matches the binomial one.",
        "variance of P(correct) across random-input examples / binomial variance",
        "between 0.5 and 2",
    ),
    (
        "fig01_random_labels_above",
        "fig01_difficulty",
        "Random labels are not binomial-like: some shared patterns are used even then.",
        "variance ratio, random labels vs random inputs",
        "random labels >= 1.5x random inputs",
    ),
    (
        "fig02_random_label_filters",
        "fig02_filters",
        "First-layer filters learned on random labels are not white noise.",
        "neighbour-weight correlation of W_T - W_0 minus that of W_0 (white noise), random labels",
        "> 0 in every seed",
    ),
    (
        "fig03_real_above_random",
        "fig03_gini",
        "Loss sensitivity is more concentrated (higher Gini) on real data than on random inputs.",
        "checkpoints T at which Gini(real) > Gini(random inputs)",
        "every checkpoint",
    ),
    (
        "fig03_half_between",
        "fig03_gini",
        "With 50% real data the Gini lies between real and random data.",
        "checkpoints at which the 50% Gini lies between the two",
        "more than half of them",
    ),
    (
        "fig03_identity_labels",
        "fig03_gini",
        "The same holds when every example is its own class.",
        "checkpoints at which Gini(real) > Gini(random inputs), identity labels",
        "every checkpoint",
    ),
    (
        "fig04_real_less_diagonal",
        "fig04_class_sensitivity",
        "Real data spread loss sensitivity across classes more than random data.",
        "diagonal / off-diagonal ratio D of the per-class sensitivity at the last checkpoint",
        "D(real) < D(random inputs)",
    ),
    (
        "fig05_noise_needs_capacity",
        "fig05_capacity",
        "With noise in the training set more units are needed to reach the best validation accuracy.",
        "per input-noise level, the smallest width within 0.5 points of that level's best validation accuracy",
        "never smaller than clean data's, larger at the highest level",
    ),
    (
        "fig06_width_helps_noise_more",
        "fig06_convergence",
        "More units fit faster, with stronger diminishing returns for real data.",
        "epochs to fit at the largest / at the smallest width, per input-noise level",
        "< 1 at every level, and closest to 1 for clean data",
    ),
    (
        "fig06_size_slows_noise_more",
        "fig06_convergence",
        "Time to fit grows with the data set size much faster for noisy data.",
        "epochs to fit at the largest / at the smallest training set, per input-noise level",
        "smallest for clean data, > 1 for every noisy level",
    ),
    (
        "fig07_noise_ordering",
        "fig07_mlp_noise",
        "MLP: more noise, higher critical sample ratio and lower best validation accuracy.",
        "final validation CSR and best validation accuracy against the noise fraction, input and label noise",
        "CSR non-decreasing and accuracy non-increasing in the fraction",
    ),
    (
        "fig07_patterns_first",
        "fig07_mlp_noise",
        "MLP with label noise: validation accuracy peaks before the noise is fit, then falls while CSR rises.",
        "for label-noise fractions >= 0.4: epoch of the validation peak, first epoch at which training accuracy "
        "exceeds the clean part by 5 points, validation and CSR from the peak to the end",
        "peak earlier, final accuracy > 1 point below the peak, CSR higher at the end",
    ),
    (
        "fig08_noise_ordering",
        "fig08_cnn_noise",
        "CNN: more noise, higher critical sample ratio and lower best validation accuracy.",
        "final validation CSR and best validation accuracy against the noise fraction, input and label noise",
        "CSR non-decreasing and accuracy non-increasing in the fraction",
    ),
    (
        "fig08_patterns_first",
        "fig08_cnn_noise",
        "CNN with label noise: validation accuracy peaks before the noise is fit, then falls while CSR rises.",
        "as fig07_patterns_first",
        "as fig07_patterns_first",
    ),
    (
        "fig09_noise_more_complex",
        "fig09_csr_random",
        "Models fit to random inputs or random labels have a much higher critical sample ratio.",
        "validation CSR of the random-input and random-label models vs the real-data model, from epoch 2",
        "both higher at every checkpoint",
    ),
    (
        "fig09_rise_then_plateau",
        "fig09_csr_random",
        "CSR rises over training, then plateaus.",
        "validation CSR after the first epoch vs the mean over the second half; range over the last quarter",
        "higher later, and the last quarter moves < 0.05, for every model",
    ),
    (
        "footnote5_training_csr",
        "fig09_csr_random",
        "Training-set CSR on real data first rises, then falls (footnote 5).",
        "training-split CSR of the real-data model: initial, peak, final",
        "peak after the start and > 1 point above it, final > 1 point below the peak",
    ),
    (
        "fig10_dropout_hinders_memorisation",
        "fig10_regularizers",
        "Dropout, and dropout with adversarial training, hinder memorisation without hurting generalisation.",
        "random-label training accuracy cut and real-data validation cost vs no regulariser, per strength",
        "some strength of each cuts >= 30 points at <= 2 points of validation cost",
    ),
    (
        "fig10_steeper_curves",
        "fig10_regularizers",
        "Weight decay and Gaussian input noise lose more validation accuracy for the same effect.",
        "validation cost per point of memorisation cut at each regulariser's strongest setting",
        "weight decay and input noise above dropout",
    ),
    (
        "fig11_order_differs",
        "fig11_regularizer_curves",
        "The order of the regularisers' training-loss curves differs between random labels and real data.",
        "order of the settings by the loop's training loss at the last epoch, random labels vs real data",
        "at least one pair flips, with both gaps larger than the seeds' spread",
    ),
):
    register_claim(Claim(*_claim, evaluate=f"memorization.claims:{_claim[0]}"))
