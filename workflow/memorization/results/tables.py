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

from ..catalog import ARROW_TYPES, FIGURES, IDENTITY, TABLES, table
from .files import DamagedFile, fix_for, read_parquet, read_parquet_metadata, written

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


def arrow_schema(name: str) -> pa.Schema:
    """The one Parquet schema of a table, whatever the config that produced it."""
    return pa.schema(
        [(column, pa.type_for_alias(ARROW_TYPES[dtype])) for column, dtype in table(name).dtypes().items()]
    )


def conform(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """A table's frame with exactly its declared columns, in order and of their declared types. Missing
    columns are an error, and so are undeclared ones (declare them in the catalog: one type per column)."""
    dtypes = table(name).dtypes()
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
    frame: pd.DataFrame, path: str | os.PathLike, *, table: str, specs: dict[str, dict], figures: list[str] = ()
) -> None:
    """Check the contract's columns, fix types, write Parquet with provenance."""
    write_frame(conform(frame, table), path, provenance(specs, figures), arrow_schema(table))


def frames_by_table(paths) -> dict[str, pd.DataFrame]:
    """Table files concatenated per table (the file name's stem): the frames a figure or a claim reads."""
    parts: dict[str, list[pd.DataFrame]] = {}
    for path in paths:
        name = Path(path).stem
        columns = list(TABLES[name].dtypes()) if name in TABLES else None  # a foreign table is named as such
        parts.setdefault(name, []).append(read_parquet(path, columns))
    return {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}


def tables_by_figure(tables_dir: str | os.PathLike) -> dict[str, dict[str, pd.DataFrame]]:
    """The tables under `tables_dir` (laid out as results/tables/<experiment>/) grouped by the figures they
    feed, as each file's metadata says, for every figure whose tables are all there: what a colleague's copy
    of the tables can be drawn into and scored on, so tables of unrelated experiments are not mixed in."""
    paths: dict[str, list[Path]] = {}
    for path in sorted(Path(tables_dir).glob("*/*.parquet")):
        for fig in provenance_list(path, "memorization.figures"):
            if fig in FIGURES and path.stem in FIGURES[fig].tables:
                paths.setdefault(fig, []).append(path)
    return {
        fig: frames_by_table(found)
        for fig, found in sorted(paths.items())
        if set(FIGURES[fig].tables) <= {p.stem for p in found}
    }


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
    lines = ["| column | type | meaning |", "|---|---|---|"]
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
            "| column | type | meaning |",
            "|---|---|---|",
        ]
        out += [_row(c) for c in entry.columns]
        out.append("")
    return "\n".join(out)


def _row(column) -> str:
    return f"| `{column.name}` | {column.dtype} | {column.description.replace('|', chr(92) + '|')} |"


def _target(target) -> str:
    return target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"
