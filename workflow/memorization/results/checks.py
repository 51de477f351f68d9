"""The checks of a run's results that the workflow makes before it plans anything, reading files only (never
writing): finished runs whose files went missing or changed since training, and tables the workflow must
rebuild. The workflow (rules/common.smk) stops on the first and has Snakemake rebuild the second (its
`--forcerun`); `memorization check --results` reports both."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .. import catalog
from .files import DamagedFile, read_parquet_metadata
from .rundir import RUN_FILES, changed_files, manifest_path, run_files_digest

if TYPE_CHECKING:
    from ..config import Config


def tables_of(config: Config, results: str = "results") -> list[str]:
    """Every table a config makes: its experiments' contract tables, results/tables/<experiment>/<table>.parquet,
    and the metric and summary tables of their runs, results/metrics/<run>/<table>.parquet."""
    paths = set()
    for name, runs in config.experiments.items():
        for table in config.tables_of(name):
            paths.add(f"{results}/tables/{name}/{table}.parquet")
            if catalog.table(table).stage != "train":
                paths |= {f"{results}/metrics/{run.run_id}/{table}.parquet" for run in runs}
    return sorted(paths)


def changed_runs(run_dirs) -> dict[str, list[str]]:
    """run folder → what is missing or changed since training (only runs with problems). Cheap: a file whose
    size and modification time are as training left them is not hashed. A manifest that cannot be read is a
    ValueError naming it and the fix."""
    found = {}
    for run_dir in run_dirs:
        problems = changed_files(run_dir)
        if problems:
            found[str(run_dir)] = problems
    return found


def changed_runs_message(changed: dict[str, list[str]]) -> str:
    """One message for the runs `changed_runs` found, with the command that retrains each."""
    problems = "; ".join(p for found in changed.values() for p in found[:3])
    commands = " ".join(f"snakemake --forcerun {Path(run) / 'manifest.json'}" for run in changed)
    return f"results changed since training: {problems}. Put the files back, or train again: {commands}"


def unusable_tables(paths, runs_root: str | os.PathLike) -> dict[str, str]:
    """Of these table paths, those the workflow must rebuild, with why: damaged ones (their footer cannot be
    read: a copy cut short, a kill on a full disk), which Snakemake would not rebuild since they are newer
    than their inputs, and metric tables computed from other files than their run's present ones (the digest
    they record, rundir.RUN_FILES, differs from the manifest's: a checkpoint swapped and put back). Missing
    ones are not checked (Snakemake makes them). Reads footers and manifests only."""
    digests, found = {}, {}
    for path in map(Path, paths):
        if not path.exists():
            continue
        try:
            meta = read_parquet_metadata(path)
        except DamagedFile:
            found[str(path)] = "cannot be read as a Parquet table (truncated or not Parquet)"
            continue
        recorded, run_dir = meta.get(RUN_FILES.encode()), Path(runs_root) / path.parent.name
        if recorded is None or not manifest_path(run_dir).exists():
            continue
        if run_dir not in digests:
            digests[run_dir] = run_files_digest(run_dir)
        if recorded.decode() != digests[run_dir]:
            found[str(path)] = f"was computed from other files than run {run_dir.name}'s present ones"
    return found
