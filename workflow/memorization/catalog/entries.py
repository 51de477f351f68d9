"""The catalog's machinery: what a data set, a table, a per-example score, a figure and a claim are, the
registries that hold them, and how an entry names its implementation. It imports nothing else of the package,
so every layer can read the catalog; the built-in entries are in `datasets` and `tables` beside it, the built-in
figures and claims in the paper rooms (memorization.papers), which the workflow and the command line import.

Everything else derives from these entries: the config schema's allowed values (`dataset`, `tables`,
`figures`, `regularizer`, the `metrics:` block), the rules' wildcard constraints, which job computes which
table, the Parquet column types, the report's captions, the scorecard and `docs/tables.md`.

Entries name their implementation by a dotted path ("memorization.measures.metrics:csr_frame") or hold the
function itself, so that reading the catalog imports neither torch nor matplotlib: Snakemake reads it every
time it builds the DAG. An analysis of your own registers its entries from a Python file listed under
`analyses:` in the config (docs/extending.md).
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
      written (memorization.engine.data.save_clean): these declarations size every job and the cost plan
      before anything loads.
    spec_defaults: run-spec values that depend on the data set's scale (what a spec on this data set gets
      when neither the spec nor the config's `defaults:` set them).
    metric_defaults: per metric table, settings that depend on the data set's scale (LASS's r on 8x8 digits
      with 17 grey levels is not r on CIFAR-10); the config's `metrics:` block overrides them.
    job_minutes: run time of a training or metric job's first attempt on this data set (a retry gets twice as
      much): what SLURM is asked for. Memory follows from each job's work (memorization.engine.memory).
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


DATASETS: dict[str, Dataset] = {}


def register_dataset(dataset: Dataset) -> Dataset:
    DATASETS[dataset.name] = dataset
    return dataset


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
    "boolean": "bool",
}


@dataclass(frozen=True)
class Column:
    """A column: its name, type and meaning, and its unit where it has one ("" for a count, a flag, a name or a
    ratio); the description and unit travel in each Parquet file's field metadata."""

    name: str
    dtype: str
    description: str
    unit: str = field(default="", kw_only=True)


def columns(*spec) -> tuple[Column, ...]:
    """Columns from (name, dtype, description[, unit]) tuples (or Columns, kept as they are)."""
    return tuple(c if isinstance(c, Column) else Column(*c[:3], unit=c[3] if len(c) > 3 else "") for c in spec)


@dataclass(frozen=True)
class Score(Column):
    """A per-example column of the `scores` table, declared once: its name, type and meaning (a Column), the
    function that computes it with its siblings, `compute(run) -> {column: (seeds, examples) array}` as the
    function or "module:function" (memorization.measures.scores), and the direction in which it marks an
    example as hard or memorized (+1: high is hard, -1: low is hard; None: a count or setting beside the
    scores, not ranked). The table's columns, the row of its job and the directions the statistics read
    (memorization.report.stats) all derive from these declarations."""

    compute: str | Callable = ""
    direction: int | None = None


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
    ("train_size", "int64", "training examples of the run", "examples"),
    ("input_noise", "string", "none | gaussian | uniform"),
    ("input_noise_fraction", "float64", "fraction of training inputs replaced by noise (0 for none)", "fraction"),
    ("label_noise", "string", "none | random | identity"),
    ("label_noise_fraction", "float64", "fraction of training labels replaced (0 for none)", "fraction"),
    ("regularizer", "string", " | ".join(REGULARIZERS)),
    ("reg_strength", "float64", "the regulariser's rate, std or lambda (0 for none)"),
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
    checkpoints: which of a run's checkpoints its compute reads: "schedule" (all of them, at the times the spec
      names), "ends" (the first and the last), or None (the last at most). A run whose experiment's tables read
      none along the schedule keeps no more by default (memorization.config: `checkpoints` not set).
    cost: the metric's cost model for the plan, `cost(spec, settings, timings, shape) -> seconds` (its
      computation, without the job's start; memorization.pipeline.plan), as the function or "module:function"; none:
      the job only reads the run's files, and its start is its cost.
    memory: the metric's memory model, `memory(spec, settings, arch, n_train) -> bytes` its computation holds
      beyond loading and evaluating the run (memorization.engine.memory; without torch, as Snakemake calls it for
      every job's `mem_mb`), as the function or "module:function"; none: no more than that.
    board: its headline values in the run's TensorBoard event files, `board(frame) -> [results.events.BoardValue]`,
      as the function or "module:function"; none: the table is not shown there.
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
    checkpoints: str | None = None
    board: str | Callable | None = None

    def dtypes(self) -> dict[str, str]:
        return {c.name: c.dtype for c in (*IDENTITY, *self.columns)}


TABLES: dict[str, Table] = {}


def register_table(table: Table) -> Table:
    if table.stage not in ("train", "metric", "summary"):
        raise ValueError(f"table {table.name}: stage must be train, metric or summary, not {table.stage!r}")
    if (table.stage == "summary") != (table.source is not None):
        raise ValueError(f"table {table.name}: a summary table, and only one, names its source table")
    if table.stage != "train" and table.compute is None:
        raise ValueError(f"table {table.name}: a {table.stage} table needs `compute`")
    if table.checkpoints not in (None, "ends", "schedule"):
        raise ValueError(f"table {table.name}: checkpoints must be None, 'ends' or 'schedule'")
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


def _entry(registry: dict, kind: str, name: str):
    try:
        return registry[name]
    except KeyError:
        raise KeyError(f"unknown {kind} {name!r}; registered: {', '.join(registry)}") from None


def table(name: str) -> Table:
    return _entry(TABLES, "table", name)


def tables_of_stage(stage: str) -> list[str]:
    return [name for name, t in TABLES.items() if t.stage == stage]


# ----------------------------------------------------------------------------- figures and claims

# What most figures compare: the data's conditions (real, random inputs, random labels and their fractions).
DATA_CONDITIONS = ("input_noise", "input_noise_fraction", "label_noise", "label_noise_fraction")
REGULARIZER_AXES = (*DATA_CONDITIONS, "regularizer", "reg_strength")  # the regularisation figures' (10, 11)


@dataclass(frozen=True)
class Figure:
    """A figure: results/figures/<name>.png and .pdf, from the named tables of every experiment that lists it.

    compute(*frames) -> the figure's statistic (frames in the order of `tables`, runs shared by experiments
      counted once): every number the figure, its findings and its claims show, computed once.
    draw(statistic) -> a matplotlib figure (import matplotlib inside it: reading the catalog stays light).
    findings(statistic) -> lines saying what this run shows (the report's "What this run shows").
    caption: what the figure shows and what the paper claims (reStructuredText, shown in the report; its line
      breaks are folded, so a room can write it as an indented triple-quoted string).
    axes: the identity columns the figure compares (its conditions, its x-axis): the experiments it pools
      may differ in these and in no other identity column (memorization.results.tables.pool_of), so that
      e.g. a width-8 and a width-256 run are never averaged into one line."""

    name: str
    tables: tuple[str, ...]
    caption: str
    compute: Callable
    draw: Callable
    findings: Callable = lambda statistic: []
    axes: tuple[str, ...] = DATA_CONDITIONS

    def __post_init__(self):
        object.__setattr__(self, "caption", " ".join(self.caption.split()))


@dataclass(frozen=True)
class Claim:
    """A claim of a paper, tested on its figure's statistic: `evaluate(statistic) -> Verdict`, on the
    same statistic the figure draws and prints, so a figure and its claim can never tell two stories."""

    name: str
    figure: str
    statement: str  # what the paper says
    statistic: str  # what is computed from the tables, in words
    rule: str  # when the claim holds
    evaluate: Callable
    note: str = ""  # what a reader should know to read its verdict (the scorecard prints it), e.g. why it fails


@dataclass(frozen=True)
class Verdict:
    """What a claim's `evaluate` returns: this run's value of the statistic, in words and numbers, and whether
    the claim holds."""

    value: str
    holds: bool


def numbers(values) -> str:
    """Numbers as a claim's value shows them: three significant digits, separated by spaces."""
    return " ".join(f"{v:.3g}" for v in values)


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
    return _entry(FIGURES, "figure", name)


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
