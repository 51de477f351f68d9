"""The checks of a run's results that the workflow makes before it plans anything, reading files only (never
writing): finished runs whose files went missing or changed since training, and tables the workflow must
rebuild. The workflow (rules/common.smk) stops on the first and has Snakemake rebuild the second (its
`--forcerun`); `memorization check --results` reports both."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from .. import catalog
from ..config import ConfigError
from ..config.reading import read_yaml
from .files import DamagedFile, read_parquet_metadata, written
from .rundir import RUN_FILES, changed_files, manifest_path, run_files_digest

if TYPE_CHECKING:
    from ..config import Config


def tables_of(config: Config, results: str = "results") -> dict[str, list[str] | None]:
    """Every table a config makes, with the runs it must hold: its experiments' contract tables,
    results/<config>/tables/<experiment>/<table>.parquet (the experiment's run ids), and the metric and
    summary tables of their runs, results/metrics/<run>/<table>.<settings key>.parquet (None: one run's, checked
    by its job)."""
    paths = {}
    for name, runs in config.experiments.items():
        for table in config.tables_of(name):
            paths[f"{results}/{config.name}/tables/{name}/{table}.parquet"] = sorted(r.run_id for r in runs)
            if catalog.table(table).stage != "train":
                paths.update({metric_path(config, run, table, results): None for run in runs})
    return dict(sorted(paths.items()))


def metric_path(config: Config, spec, table: str, results: str = "results") -> str:
    """Where a run's metric or summary table computed with this config's settings lies (rules/metrics.smk)."""
    return f"{results}/metrics/{spec.run_id}/{table}.{config.metric_key(table, spec.dataset)}.parquet"


RECORD_HEADER = (
    "# The config that made the results in this folder, resolved (every default filled in), and the file it was\n"
    "# read from. `memorization runs`, `show`, `why` and `report` read it when given no config.\n"
)


def write_config_record(values: dict, source: str, path: str | os.PathLike) -> None:
    """results/<config>/config.yaml: the config's values and its file."""
    text = RECORD_HEADER + yaml.safe_dump({"source": source, "config": values}, sort_keys=False)
    with written(path) as f:
        f.write(text.encode())


def read_config_record(path: str | os.PathLike) -> dict:
    """{"source": file, "config": values} of a record, read as every config is (memorization.config)."""
    record = read_yaml(Path(path))
    if not isinstance(record.get("config"), dict):
        raise ConfigError(
            f"{path} is not a record of a config (no `config:` mapping); delete it, snakemake writes it again"
        )
    return record


def recorded_source(path: str | os.PathLike) -> str | None:
    """The config file whose results a results/<config>/ folder holds (None: no record yet, or one that
    cannot be read, which the next run writes again)."""
    try:
        return str(read_config_record(path).get("source", ""))
    except (OSError, ConfigError):
        return None


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


def unusable_tables(paths: dict[str, list[str] | None], runs_root: str | os.PathLike) -> dict[str, str]:
    """Of these table paths (each with the run ids it must hold, or None), those the workflow must rebuild,
    with why: damaged ones (their footer cannot be read: a copy cut short, a kill on a full disk), which
    Snakemake would not rebuild since they are newer than their inputs; experiment tables whose runs are not
    the experiment's (another experiment's table copied in); and metric tables computed from other files than
    their run's present ones (the digest they record, rundir.RUN_FILES, differs from the manifest's: a
    checkpoint swapped and put back). Missing ones are not checked (Snakemake makes them). Reads footers and
    manifests only."""
    digests, found = {}, {}
    for path, runs in ((Path(p), r) for p, r in paths.items()):
        if not path.exists():
            continue
        try:
            meta = read_parquet_metadata(path)
        except DamagedFile:
            found[str(path)] = "cannot be read as a Parquet table (truncated or not Parquet)"
            continue
        if runs is not None:
            held = _run_ids(meta)
            if held != runs:
                found[str(path)] = (
                    f"holds runs {_few(held)}, not its experiment's in this config ({_few(runs)})"
                    if held is not None
                    else "names no runs in its metadata (not a table of this workflow's)"
                )
            continue
        recorded, run_dir = meta.get(RUN_FILES.encode()), Path(runs_root) / path.parent.name
        if recorded is None or not manifest_path(run_dir).exists():
            continue
        if run_dir not in digests:
            digests[run_dir] = run_files_digest(run_dir)
        if recorded.decode() != digests[run_dir]:
            found[str(path)] = f"was computed from other files than run {run_dir.name}'s present ones"
    return found


def _run_ids(meta: dict) -> list[str] | None:
    try:
        return sorted(json.loads(meta[b"memorization.run_specs"]))
    except (KeyError, ValueError, TypeError, RecursionError):
        return None


def _few(ids: list[str]) -> str:
    return ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
