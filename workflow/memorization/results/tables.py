"""The Parquet table contract (docs/tables.md): identity columns on every row, one declared type per column
(from the catalog), provenance in the metadata.

Reading tables and their provenance needs only pandas and pyarrow: no torch, Snakemake or jsonschema, so a
colleague with `pip install memorization[figures]` can use shared tables.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..catalog import ARROW_TYPES, FIGURES, IDENTITY, TABLES, Column, table
from .files import DamagedFile, Refusal, fix_for, read_parquet, read_parquet_metadata, written

if TYPE_CHECKING:
    from ..config import RunSpec

IDENTITY_COLUMNS = tuple(c.name for c in IDENTITY)


def identity_values(experiment: str, spec: RunSpec) -> dict:
    """The identity columns of one run, but `seed` and `train_size`, which the run's own rows carry
    (a run knows its real training-set size even when the spec says "the whole split")."""
    keys = [c for c in IDENTITY_COLUMNS if c not in ("experiment", "run_id", "config_id", "seed", "train_size")]
    ids = {"experiment": experiment, "run_id": spec.run_id, "config_id": spec.config_id}
    return {**ids, **{k: getattr(spec, k) for k in keys}}


def with_identity(frame: pd.DataFrame, identity: dict) -> pd.DataFrame:
    """Prepend the identity columns to a per-run frame (which has `seed`)."""
    out = pd.DataFrame({k: [v] * len(frame) for k, v in identity.items()}, index=frame.index)
    out = pd.concat([out, frame], axis=1)
    front = [c for c in IDENTITY_COLUMNS if c in out]
    return out[front + [c for c in out.columns if c not in front]]


def arrow_schema(name: str, settings: tuple[Column, ...] = ()) -> pa.Schema:
    """The Parquet schema of a table: its declared columns, whatever the config that produced it, then the
    experiment's setting columns; each field carries its description and unit in its metadata, so a shared
    file says what its columns mean."""
    declared = [*IDENTITY, *table(name).columns, *settings]
    return pa.schema(
        [pa.field(c.name, pa.type_for_alias(ARROW_TYPES[c.dtype]), metadata=_field_metadata(c)) for c in declared]
    )


def _field_metadata(column: Column) -> dict[str, str]:
    return {"description": column.description, "unit": column.unit}


def setting_columns(keys, identity_and_table=()) -> tuple[Column, ...]:
    """The columns of an experiment's settings: each spec key that sets its runs apart (memorization.config
    .Config.settings_of), named as in the config, typed and described by the config schema; none that the
    identity columns or the table's own (`identity_and_table`) already carry. Lists and mappings (cnn_dense,
    checkpoints) are JSON text."""
    from ..config.spec import schema_file  # the workflow's install: reading shared tables needs no config

    props = schema_file()["$defs"]["partial_spec"]["properties"]
    taken = set(IDENTITY_COLUMNS) | set(identity_and_table)
    return tuple(
        Column(
            key,
            _setting_dtype(props[key]),
            "experiment setting: "
            + " ".join(props[key].get("description", "a run-spec key (config.schema.yaml)").split()),
        )  # fmt: skip
        for key in keys
        if key not in taken
    )


def _setting_dtype(prop: dict) -> str:
    kinds = prop.get("type", "string")
    kinds = set(kinds if isinstance(kinds, list) else [kinds]) - {"null"}
    if kinds == {"integer"}:
        return "Int64"
    if kinds <= {"number", "integer"} and kinds:
        return "Float64"
    if kinds == {"boolean"}:
        return "boolean"
    return "string"


def setting_values(spec: RunSpec, settings: tuple[Column, ...]) -> dict:
    """One run's values of the setting columns (JSON text for lists and mappings)."""
    values = {}
    for column in settings:
        value = getattr(spec, column.name)
        if isinstance(value, (tuple, list, dict)):
            value = json.dumps(list(value) if isinstance(value, tuple) else value, sort_keys=True)
        values[column.name] = value
    return values


def conform(frame: pd.DataFrame, name: str, settings: tuple[Column, ...] = ()) -> pd.DataFrame:
    """A table's frame with exactly its declared columns (and the experiment's setting columns), in order and
    of their declared types. Missing columns are an error, and so are undeclared ones (declare them in the
    catalog: one type per column)."""
    dtypes = {**table(name).dtypes(), **{c.name: c.dtype for c in settings}}
    missing = [c for c in dtypes if c not in frame.columns]
    if missing:
        raise ValueError(f"table {name!r} lacks required columns {missing}")
    extra = [c for c in frame.columns if c not in dtypes]
    if extra:
        raise ValueError(
            f"table {name!r} has columns {extra} that the catalog does not declare "
            f"(memorization.catalog, table {name!r})"
        )
    return frame[list(dtypes)].astype(dtypes)


def _code_version() -> str:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(specs: dict[str, dict], figures: list[str] = ()) -> dict[str, str]:
    """Key-value metadata that lets a shared table explain itself. No timestamps: same inputs, same file."""
    versions = {}
    for pkg in ("memorization", "torch", "numpy", "pandas", "pyarrow"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "unknown"
    return {
        "memorization.code_version": _code_version(),
        "memorization.library_versions": json.dumps(versions, sort_keys=True),
        "memorization.python": platform.python_version(),
        "memorization.run_specs": json.dumps(specs, sort_keys=True),
        "memorization.figures": json.dumps(sorted(figures)),  # what a shared table can be drawn into
        "memorization.contract": "docs/tables.md of the memorization workflow; one row per observation",
    }


def write_frame(
    frame: pd.DataFrame,
    path: str | os.PathLike,
    metadata: dict[str, str] | None = None,
    schema: pa.Schema | None = None,
) -> None:
    """Write a frame to Parquet atomically (a killed job leaves no half file), with key-value metadata."""
    arrow = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    meta = {**(arrow.schema.metadata or {}), **{k.encode(): v.encode() for k, v in (metadata or {}).items()}}
    arrow = arrow.replace_schema_metadata(meta)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with written(path) as f:
        pq.write_table(arrow, f)


def write_table(
    frame: pd.DataFrame,
    path: str | os.PathLike,
    *,
    table: str,
    specs: dict[str, dict],
    figures: list[str] = (),
    settings: tuple[Column, ...] = (),
) -> None:
    """Check the contract's columns, fix types, write Parquet with provenance and column descriptions."""
    meta = {**provenance(specs, figures), "memorization.settings": json.dumps([c.name for c in settings])}
    write_frame(conform(frame, table, settings), path, meta, arrow_schema(table, settings))


def frames_by_table(paths) -> dict[str, pd.DataFrame]:
    """Table files concatenated per table (the file name's stem): the frames a figure or a claim reads."""
    parts: dict[str, list[pd.DataFrame]] = {}
    for path in paths:
        name = Path(path).stem
        columns = list(TABLES[name].dtypes()) if name in TABLES else None  # a foreign table is named as such
        parts.setdefault(name, []).append(read_parquet(path, columns))
    return {name: _settings_per_run(pd.concat(frames, ignore_index=True), name) for name, frames in parts.items()}


def _settings_per_run(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """The frame with each run's setting columns filled from its other rows: a run shared by two experiments
    has a setting column only in the tables of the experiment that varies it (Config.settings_of), and its
    rows would otherwise differ there and count twice (report.stats.distinct)."""
    declared = TABLES[name].dtypes() if name in TABLES else frame.columns  # a foreign table: nothing to fill
    settings = [c for c in frame.columns if c not in declared]
    if settings and "run_id" in frame:
        frame[settings] = frame.groupby("run_id", sort=False)[settings].transform("first")
    return frame


def tables_by_figure(tables_dir: str | os.PathLike, skipped: dict[str, str] | None = None) -> dict[str, dict]:
    """The tables under `tables_dir` (laid out as results/<config>/tables/<experiment>/) grouped by the figures
    they feed, as each file's metadata says, for every figure whose tables are all there: what a colleague's
    copy of the tables can be drawn into and scored on, so tables of unrelated experiments are not mixed in.
    The figures named but not drawable go into `skipped`, each with why (not registered: an analysis not
    loaded; a table missing)."""
    paths: dict[str, list[Path]] = {}
    skipped = {} if skipped is None else skipped
    for path in sorted(Path(tables_dir).glob("*/*.parquet")):
        for fig in provenance_list(path, "memorization.figures"):
            if fig not in FIGURES:
                skipped[fig] = (
                    f"not drawn: {path} names it, but no figure {fig} is registered (a figure of an analysis: "
                    "give its file with --analyses FILE)"
                )
            elif path.stem in FIGURES[fig].tables:
                paths.setdefault(fig, []).append(path)
    found = {}
    for fig, files in sorted(paths.items()):
        missing = sorted(set(FIGURES[fig].tables) - {p.stem for p in files})
        twice = _one_experiment_twice(files)
        if missing:
            skipped[fig] = f"not drawn: it reads tables {', '.join(missing)}, which are not under {tables_dir}"
        elif twice:
            skipped[fig] = f"not drawn: {twice}"
        else:
            found[fig] = frames_by_table(files)
    return found


def _one_experiment_twice(files: list[Path]) -> str | None:
    """Why files of one table cannot be pooled: two of them hold the same experiment (tables of two configs of
    the same experiment name, or a copy), whose rows would be counted twice or mixed."""
    seen: dict[tuple[str, str], Path] = {}
    for path in files:
        for experiment in pq.read_table(path, columns=["experiment"]).column(0).unique().to_pylist():
            first = seen.setdefault((path.stem, experiment), path)
            if first != path:
                return (
                    f"experiment {experiment}'s {path.stem} table is both {first} and {path} (two configs' tables of "
                    "one experiment name, or a copy); keep one of them in the folder"
                )
    return None


class MixedExperiments(Refusal):
    """A figure's tables pool experiments that differ in what the figure does not compare."""


POOL_KEYS = ("experiment", "run_id", "config_id", "seed")


def pool_of(figure: str, frames: dict[str, pd.DataFrame]) -> list[str]:
    """What a figure's tables pool, in words, one line per experiment ("Drawn from tiny: 3 runs × 2 seeds; dataset
    digits, arch mlp, width 8, train_size 60, regularizer none, reg_strength 0"); a MixedExperiments naming two
    experiments and the column where they differ in an identity column the figure does not compare (its
    `axes`): drawn together they would be averaged into one line."""
    axes = FIGURES[figure].axes
    runs_of = ["experiment", "run_id", "seed"]
    parts = [
        f[[c for c in IDENTITY_COLUMNS if c in f]].drop_duplicates(runs_of)
        for f in frames.values()
        if "experiment" in f
    ]
    if not parts:
        return []
    rows = pd.concat(parts, ignore_index=True).drop_duplicates(runs_of)
    compared = [c for c in IDENTITY_COLUMNS if c in rows and c not in (*POOL_KEYS, *axes)]
    values, lines = {}, []
    for name, group in rows.groupby("experiment", sort=True):
        values[name] = {c: sorted({_plain(v) for v in group[c]}, key=str) for c in compared}
        runs, seeds = group["run_id"].nunique(), group.groupby("run_id")["seed"].nunique()
        each = f"{seeds.iloc[0]} seed{'s' if seeds.iloc[0] > 1 else ''}" if seeds.nunique() == 1 else "seeds"
        fixed = ", ".join(f"{c} {_listed(values[name][c])}" for c in compared)
        lines.append(f"Drawn from {name}: {runs} run{'s' if runs > 1 else ''} × {each}; {fixed}")
    first, *others = values
    for name in others:
        for column in compared:
            if values[name][column] != values[first][column]:
                raise MixedExperiments(
                    f"{figure} would pool experiments {first} and {name}, which differ in {column} "
                    f"({_listed(values[first][column])} against {_listed(values[name][column])}), not one of the "
                    f"figure's axes ({', '.join(axes)}); draw them apart (each experiment's tables in a folder of "
                    f"their own), or give both the same {column}"
                )
    return lines


def _plain(value):
    return None if pd.isna(value) else value.item() if hasattr(value, "item") else value


def _listed(values: list) -> str:
    return "/".join("null" if v is None else f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def read_run_table(path: str | os.PathLike, run_id: str, seeds) -> pd.DataFrame:
    """One run's rows of a table, as its job wrote them, checked before they join an experiment table: the
    file must say it was written for this run and these seeds, hold the rows it says, every seed and no
    other, and, where rows are per step, the same steps for every seed."""
    meta = read_provenance(path)
    fix = f"delete {path} and run snakemake again to recompute it"
    if meta.get("memorization.run_id") != run_id or provenance_list(path, "memorization.seeds") != list(seeds):
        raise ValueError(f"{path} was not written by the job of run {run_id} with seeds {list(seeds)}; {fix}")
    frame = read_parquet(path)
    if str(len(frame)) != meta.get("memorization.rows"):
        raise ValueError(f"{path} holds {len(frame)} rows, its job wrote {meta.get('memorization.rows')}; {fix}")
    if sorted(frame["seed"].unique().tolist()) != sorted(seeds):
        raise ValueError(
            f"{path} has rows of seeds {sorted(frame['seed'].unique().tolist())}, expected {sorted(seeds)}; {fix}"
        )
    if "step" in frame:
        per_seed = frame.groupby("seed")["step"].apply(lambda s: tuple(sorted(s)))
        if per_seed.nunique() != 1:
            raise ValueError(f"{path}: the seeds have different rows per step (an incomplete file); {fix}")
    return frame


def read_provenance(path: str | os.PathLike) -> dict[str, str]:
    """The workflow's key-value metadata of a table file (text); a value that is not UTF-8 text is damage."""
    meta = read_parquet_metadata(path)
    try:
        return {k.decode(): v.decode() for k, v in meta.items() if k.startswith(b"memorization.")}
    except UnicodeDecodeError:
        raise DamagedFile(f"{path} has metadata that is not text; {fix_for(path)}") from None


def provenance_list(path: str | os.PathLike, key: str) -> list:
    """A metadata value that is a JSON list of plain values (figure names, seeds), [] where the key is
    absent; anything else (not JSON, a number, nested lists) is a damaged file, named with the fix."""
    text = read_provenance(path).get(key)
    if text is None:
        return []
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        raise DamagedFile(f"{path} has metadata {key} that is not a list of names or numbers; {fix_for(path)}")
    return value


def contract_markdown() -> str:
    """The table contract as Markdown, generated from the catalog (docs/tables.md holds a copy; a test
    keeps the two equal)."""
    lines = ["| column | type | unit | meaning |", "|---|---|---|---|"]
    lines += [_row(c) for c in IDENTITY]
    out = ["### Identity columns (every table, first, in this order)", "", *lines, ""]
    for name, entry in TABLES.items():
        if entry.stage == "train":
            made = "the training job"
        elif entry.stage == "metric":
            made = f"a metric job (`{_target(entry.compute)}`)"
        else:
            made = f"a summary of `{entry.source}` (`{_target(entry.compute)}`)"
        out += [
            f"### `{name}`: one row per {entry.row}",
            "",
            f"{entry.description} Made by {made}.",
            "",
            "| column | type | unit | meaning |",
            "|---|---|---|---|",
        ]
        out += [_row(c) for c in entry.columns]
        out.append("")
    return "\n".join(out)


def _row(column) -> str:
    meaning = column.description.replace("|", chr(92) + "|")
    return f"| `{column.name}` | {column.dtype} | {column.unit or '—'} | {meaning} |"


def _target(target) -> str:
    return target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"
