"""The Parquet table contract of DESIGN.md: identity columns on every row, provenance in the metadata."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .spec import run_id

IDENTITY_COLUMNS = (
    "experiment", "run_id", "seed", "dataset", "arch", "width", "train_size", "input_noise",
    "input_noise_fraction", "label_noise", "label_noise_fraction", "regularizer", "reg_strength",
)

# Columns each table adds to the identity columns (DESIGN.md). Extra columns are allowed after these.
TABLE_COLUMNS = {
    "training": ("epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc"),
    "examples": ("epoch", "step", "example", "correct", "is_noisy"),
    "convergence": ("epochs_to_fit", "max_epochs"),
    "filters": ("step", "filter", "channel", "row", "col", "value"),
    "sensitivity": ("step", "example", "sensitivity", "is_noisy"),
    "gini": ("step", "gini"),
    "class_sensitivity": ("step", "class_i", "class_j", "value"),
    "csr": ("epoch", "step", "split", "csr", "n_points"),
}
RUN_TABLES = ("training", "examples", "convergence")  # written by the training job; the others by metric jobs

_DTYPES = {
    "experiment": "string", "run_id": "string", "seed": "int64", "dataset": "string", "arch": "string",
    "width": "Int64", "train_size": "Int64", "input_noise": "string", "input_noise_fraction": "float64",
    "label_noise": "string", "label_noise_fraction": "float64", "regularizer": "string",
    "reg_strength": "float64", "epoch": "float64", "step": "int64", "example": "int64", "correct": "bool",
    "is_noisy": "bool", "class_i": "int64", "class_j": "int64", "split": "string", "n_points": "int64",
    "epochs_to_fit": "Float64", "max_epochs": "float64", "filter": "int64", "channel": "int64", "row": "int64",
    "col": "int64", "value": "float64",
}


def identity_values(experiment: str, spec: dict) -> dict:
    """The identity columns of one run, but `seed` and `train_size`, which the run's own rows carry
    (a run knows its real training-set size even when the spec says "the whole split")."""
    return {
        "experiment": experiment,
        "run_id": run_id(spec),
        "dataset": spec["dataset"],
        "arch": spec["arch"],
        "width": spec["width"],
        "input_noise": spec["input_noise"],
        "input_noise_fraction": spec["input_noise_fraction"],
        "label_noise": spec["label_noise"],
        "label_noise_fraction": spec["label_noise_fraction"],
        "regularizer": spec["regularizer"],
        "reg_strength": spec["reg_strength"],
    }


def with_identity(frame: pd.DataFrame, identity: dict) -> pd.DataFrame:
    """Prepend the identity columns to a per-run frame (which has `seed`)."""
    out = pd.DataFrame({k: [v] * len(frame) for k, v in identity.items()}, index=frame.index)
    out = pd.concat([out, frame], axis=1)
    front = [c for c in IDENTITY_COLUMNS if c in out]
    return out[front + [c for c in out.columns if c not in front]]


def _code_version() -> str:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, timeout=10).stdout.strip()
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
        "memorization.contract": "DESIGN.md table contract; one row per observation",
    }


def write_table(frame: pd.DataFrame, path: str | os.PathLike, *, table: str, specs: dict[str, dict],
                figures: list[str] = ()) -> None:
    """Check the contract's columns, fix dtypes, write Parquet with provenance, atomically."""
    required = (*IDENTITY_COLUMNS, *TABLE_COLUMNS[table])
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"table {table!r} lacks required columns {missing}")
    frame = frame.astype({c: t for c, t in _DTYPES.items() if c in frame.columns})
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {**(arrow.schema.metadata or {}), **{k.encode(): v.encode() for k, v in provenance(specs, figures).items()}}
    arrow = arrow.replace_schema_metadata(meta)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(arrow, tmp)
    os.replace(tmp, path)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_parquet(path)


def read_provenance(path: str | os.PathLike) -> dict[str, str]:
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if k.startswith(b"memorization.")}
