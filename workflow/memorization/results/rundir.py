"""The layout of a run's directory, results/runs/<run_id>/, and its manifest. Standard library only: the
workflow reads it when it builds the DAG.

    spec.json        the run's resolved spec
    unfinished/      checkpoints/, evals/ and presentations/ while the run trains, moved up when it ends
                     (`publish`): the training job's declared outputs appear complete or not at all, and
                     Snakemake, which deletes a job's outputs before it runs, never deletes a resume point
    checkpoints/     step_<9 digits>.pt: parameters, BatchNorm buffers, momentum and the loop's running sums
    evals/           step_<9 digits>.npz: losses, accuracies, per-example correctness and probability of the
                     label at each evaluation
    presentations/   epoch_<6 digits>.npz: every mini-batch presentation of the epoch, in the epoch's order,
                     as the training step saw it: correct (bool) and margin (float32), (seeds, presentations)
    state.pt         the resume state between checkpoints, while training
    end.json         the step training ended at (earlier than planned if it stopped at fit), when finished
    manifest.json    the checkpoints, evaluations and presentations its downstream jobs read, with their
                     sizes, modification times and content hashes (SHA-256)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from .files import written

# Snakemake's `benchmark:` files of the training and metric jobs (rules/train.smk, rules/metrics.smk), which
# the cost plan compares its predictions with and `--time-of` sums: one place for both.
TRAIN_BENCHMARK = "results/benchmarks/train/{run}.tsv"
METRIC_BENCHMARK = "results/benchmarks/metrics/{run}/{table}.tsv"


# The folders of a finished run that its downstream jobs read: the training rule's directory() outputs.
PUBLISHED = ("checkpoints", "evals", "presentations")


def unfinished_dir(run_dir) -> Path:
    """Where a run's checkpoints, evaluations and presentations are written while it trains."""
    return Path(run_dir) / "unfinished"


def publish(run_dir) -> None:
    """Move a finished run's folders from unfinished/ into place (a rename each), replacing what was there."""
    run_dir = Path(run_dir)
    for sub in PUBLISHED:
        shutil.rmtree(run_dir / sub, ignore_errors=True)
        os.replace(unfinished_dir(run_dir) / sub, run_dir / sub)
    unfinished_dir(run_dir).rmdir()


def checkpoint_path(run_dir, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:09d}.pt"


def eval_path(run_dir, step: int) -> Path:
    return Path(run_dir) / "evals" / f"step_{step:09d}.npz"


def presentations_path(run_dir, epoch: int) -> Path:
    return Path(run_dir) / "presentations" / f"epoch_{epoch:06d}.npz"


def end_path(run_dir) -> Path:
    """Written when a run completes: the step it ended at (earlier than planned if it stopped at fit)."""
    return Path(run_dir) / "end.json"


def manifest_path(run_dir) -> Path:
    return Path(run_dir) / "manifest.json"


def file_digest(path) -> str:
    """The SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(run_dir) -> None:
    """The files a finished run's downstream jobs read (checkpoints, evaluations, presentations) with their
    size, modification time and content hash, computed once here: the training rule's output, so a retrained
    run reruns what reads it, and `changed_files` can tell when one has gone or changed since."""
    run_dir = Path(run_dir)
    files = sorted(
        [
            *run_dir.glob("checkpoints/step_*.pt"),
            *run_dir.glob("evals/step_*.npz"),
            *run_dir.glob("presentations/epoch_*.npz"),
        ]
    )
    listing = {
        str(f.relative_to(run_dir)): {
            "size": f.stat().st_size,
            "mtime_ns": f.stat().st_mtime_ns,
            "sha256": file_digest(f),
        }
        for f in files
    }
    with written(manifest_path(run_dir)) as f:
        f.write((json.dumps({"files": listing}, indent=1, sort_keys=True) + "\n").encode())


def read_manifest(run_dir) -> dict[str, dict] | None:
    """A finished run's listing, {relative path: {size, mtime_ns, sha256}} (None before it has one). A
    manifest of before content hashes ({path: size}) reads as sizes alone. A manifest that cannot be read is
    an error naming it and the fix."""
    path = manifest_path(run_dir)
    if not path.exists():
        return None
    try:
        listing = json.loads(path.read_text())["files"]
        return {rel: entry if isinstance(entry, dict) else {"size": int(entry)} for rel, entry in listing.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(
            f"{path} cannot be read as a run's manifest ({type(err).__name__}); train the run again: "
            f"snakemake --forcerun {path}"
        ) from None


def changed_files(run_dir, *, verify: bool = False) -> list[str]:
    """The files of a finished run's manifest that are missing or changed since training ([] if none, or if
    the run has no manifest yet). Cheap by default: a file of the same size and modification time is taken
    as unchanged and only one whose size or time moved is hashed; with `verify`, every file is hashed (what a
    metric job does before it reads them)."""
    run_dir = Path(run_dir)
    problems = []
    for rel, entry in (read_manifest(run_dir) or {}).items():
        path = run_dir / rel
        if not path.is_file():
            problems.append(f"{path} is missing")
            continue
        stat = path.stat()
        if stat.st_size != entry["size"]:
            problems.append(f"{path} has {stat.st_size} bytes, {entry['size']} when training wrote it")
        elif (
            "sha256" in entry
            and (verify or stat.st_mtime_ns != entry.get("mtime_ns"))
            and file_digest(path) != entry["sha256"]
        ):
            problems.append(f"{path} is not the file training wrote (its content hash differs)")
    return problems


RUN_FILES = "memorization.run_files"  # the metadata key under which a metric table records run_files_digest


def run_files_digest(run_dir) -> str:
    """One hash of a finished run's files (of its manifest's content hashes): what a metric table records it
    was computed from, so a table computed from other files than the run's present ones can be told."""
    listing = read_manifest(run_dir) or {}
    text = json.dumps({rel: entry.get("sha256", entry["size"]) for rel, entry in listing.items()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
