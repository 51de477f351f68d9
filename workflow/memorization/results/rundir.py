"""The layout of a run's directory, results/runs/<run_id>/, and its manifest. Standard library only: the
workflow reads it when it builds the DAG.

    spec.json        the run's resolved spec
    unfinished/      checkpoints/, evals/ and presentations/ while the run trains: Snakemake, which deletes a
                     job's outputs before it runs, never deletes a resume point
    trained/         the same folders once training has ended (`publish`, a rename): kept, never an output,
                     so a finished run whose outputs Snakemake deleted (an interrupted workflow) is linked
                     again, not trained again
    checkpoints/     the training job's outputs, hard links to trained/'s files (no second copy on disk):
                     step_<9 digits>.pt: parameters, BatchNorm buffers, momentum and the loop's running sums
    evals/           step_<9 digits>.npz: losses, accuracies, per-example correctness and probability of the
                     label at each evaluation
    presentations/   epoch_<6 digits>.npz: every mini-batch presentation of the epoch, in the epoch's order,
                     as the training step saw it: correct (bool) and margin (float32), (seeds, presentations)
    state.pt         the resume state between checkpoints, while training
    end.json         when finished: the step training ended at (earlier than planned if it stopped at fit), the
                     spec and code it was trained with, and the content hash of each of trained/'s files
    lock             held (flock) by the process that trains the run: never two at once
    manifest.json    the checkpoints, evaluations and presentations its downstream jobs read, with their
                     sizes, modification times and content hashes (SHA-256)
    tensorboard/     TensorBoard event files (results.events), written as it trains and as its metric tables
                     are computed: read by no job, hashed by neither the manifest nor end.json
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

from .files import written

# Snakemake's `benchmark:` files of the training and metric jobs (rules/train.smk, rules/metrics.smk), which
# the cost plan compares its predictions with and `--time-of` sums: one place for both.
TRAIN_BENCHMARK = "results/benchmarks/train/{run}.tsv"
METRIC_BENCHMARK = "results/benchmarks/metrics/{run}/{table}.{settings}.tsv"


# The folders of a finished run that its downstream jobs read: the training rule's directory() outputs.
PUBLISHED = ("checkpoints", "evals", "presentations")


def unfinished_dir(run_dir) -> Path:
    """Where a run's checkpoints, evaluations and presentations are written while it trains."""
    return Path(run_dir) / "unfinished"


def trained_dir(run_dir) -> Path:
    """Where a run's checkpoints, evaluations and presentations are kept once training has ended."""
    return Path(run_dir) / "trained"


def publish(run_dir) -> None:
    """Training has ended: unfinished/ becomes trained/ (one rename), and the output folders are linked."""
    shutil.rmtree(trained_dir(run_dir), ignore_errors=True)
    os.replace(unfinished_dir(run_dir), trained_dir(run_dir))
    link_outputs(run_dir)


def link_outputs(run_dir) -> None:
    """The training job's output folders, checkpoints/, evals/ and presentations/, made afresh of hard links to
    trained/'s files (copies where the file system has no hard links); each appears whole or not at all."""
    run_dir = Path(run_dir)
    for sub in PUBLISHED:
        made = run_dir / f"{sub}.linking"
        shutil.rmtree(made, ignore_errors=True)
        made.mkdir()
        for kept in sorted((trained_dir(run_dir) / sub).iterdir()):
            try:
                os.link(kept, made / kept.name)
            except OSError:
                shutil.copy2(kept, made / kept.name)
        shutil.rmtree(run_dir / sub, ignore_errors=True)
        os.replace(made, run_dir / sub)


def kept_digests(run_dir) -> dict[str, str]:
    """{path under the folders, e.g. "checkpoints/step_000000004.pt": SHA-256} of the files training wrote,
    while they are still in unfinished/: what end.json records and `finished_files` checks."""
    folder = unfinished_dir(run_dir)
    return {str(path.relative_to(folder)): file_digest(path) for path in run_files(folder)}


def relink_finished(run_dir, fingerprint: str) -> bool:
    """Whether the run finished training with this spec and code (end.json's fingerprint) and its kept files
    are as training wrote them; then its output folders are linked again, as Snakemake may have deleted them.
    A kept file that is missing or changed is said, and the run is not finished (it trains again)."""
    end = read_end(run_dir)
    if end is None or end.get("fingerprint") != fingerprint or not isinstance(end.get("files"), dict):
        return False
    problems = finished_files(run_dir, end["files"])
    if problems:
        print(f"run {Path(run_dir).name} finished, but {'; '.join(problems[:3])}: training it again", file=sys.stderr)
        return False
    link_outputs(run_dir)
    return True


def finished_files(run_dir, digests: dict[str, str]) -> list[str]:
    """What is wrong with a finished run's kept files against end.json's digests ([] if nothing): each is
    hashed (a finished run's job runs again only after an interrupt or a --forcerun)."""
    kept = trained_dir(run_dir)
    problems = [f"{kept / rel} is missing" for rel in digests if not (kept / rel).is_file()]
    problems += [f"{kept / rel} is not the file training wrote" for rel, digest in digests.items()
                 if (kept / rel).is_file() and file_digest(kept / rel) != digest]  # fmt: skip
    return problems


def checkpoint_path(run_dir, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:09d}.pt"


def eval_path(run_dir, step: int) -> Path:
    return Path(run_dir) / "evals" / f"step_{step:09d}.npz"


def presentations_path(run_dir, epoch: int) -> Path:
    return Path(run_dir) / "presentations" / f"epoch_{epoch:06d}.npz"


@contextmanager
def run_lock(run_dir):
    """Held while a process trains the run (an flock on run_dir/lock, freed by the kernel when the process
    dies, even by SIGKILL): a second trainer of the same run waits, saying so, and never writes beside the
    first (an orphaned job of a killed workflow, a retry)."""
    path = Path(run_dir) / "lock"
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"run {Path(run_dir).name} is being trained by another process: waiting for it to end",
                  file=sys.stderr, flush=True)  # fmt: skip
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_end(run_dir) -> dict | None:
    """A finished run's end.json ({step, fingerprint, files}), None before it has one or if it cannot be
    read (then the run is not finished, and trains again from its last state)."""
    try:
        end = json.loads(end_path(run_dir).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return end if isinstance(end, dict) and isinstance(end.get("step"), int) else None


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


def run_files(run_dir) -> list[Path]:
    """The files of a finished run that its downstream jobs read: checkpoints, evaluations, presentations."""
    run_dir = Path(run_dir)
    patterns = ("checkpoints/step_*.pt", "evals/step_*.npz", "presentations/epoch_*.npz")
    return sorted(path for pattern in patterns for path in run_dir.glob(pattern))


def write_manifest(run_dir, digests: dict[str, str] | None = None) -> None:
    """The files a finished run's downstream jobs read (checkpoints, evaluations, presentations) with their
    size, modification time and content hash (`digests`, end.json's, where it has the file; else computed
    here): the training rule's output, so a retrained run reruns what reads it, and `changed_files` can tell
    when one has gone or changed since."""
    run_dir, digests = Path(run_dir), digests or {}
    listing = {}
    for f in run_files(run_dir):
        rel = str(f.relative_to(run_dir))
        digest = digests.get(rel) or file_digest(f)
        listing[rel] = {"size": f.stat().st_size, "mtime_ns": f.stat().st_mtime_ns, "sha256": digest}
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
    """The files of a finished run's manifest that are missing or changed since training, and files among
    them that its manifest does not list ([] if none, or if the run has no manifest yet). Cheap by default: a
    file of the same size and modification time is taken as unchanged and only one whose size or time moved
    is hashed; with `verify`, every file is hashed (what a metric job does before it reads them)."""
    run_dir = Path(run_dir)
    listing = read_manifest(run_dir)
    if listing is None:
        return []
    problems = [f"{path} is not in the run's manifest" for path in run_files(run_dir)
                if str(path.relative_to(run_dir)) not in listing]  # fmt: skip
    for rel, entry in listing.items():
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
