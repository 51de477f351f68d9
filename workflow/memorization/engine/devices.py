"""Device choice and GPU leases.

Snakemake's `--resources gpu=2` only counts jobs; it never says WHICH GPU a job should use (upstream
issue #281), so two concurrent jobs would both land on GPU 0. Each job therefore leases a GPU itself:
one lock file per visible GPU, a non-blocking `fcntl.flock` tried on each in turn, held for the life
of the job. The kernel releases the lock when the process dies, even by SIGKILL, so no lease leaks.
A CUDA_VISIBLE_DEVICES set by a cluster scheduler is respected: we lease among the visible GPUs only,
and lock them under their node-global ids (SLURM's own ids under its device cgroups, see _physical_ids) so
that jobs with different visible sets still exclude each other.
"""

from __future__ import annotations

import fcntl
import os
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..results.files import Refusal, private_folder


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _physical_ids(count: int) -> list[str]:
    """Node-global ids of the `count` visible GPUs, in CUDA's order, prefixed with the host name (a lock
    directory on a shared filesystem then still separates nodes).

    Under SLURM with device cgroups every job sees its GPUs as 0, 1, ... whatever it was given, so
    CUDA_VISIBLE_DEVICES cannot tell two jobs' GPUs apart; SLURM_STEP_GPUS / SLURM_JOB_GPUS hold the node's
    real ids. Otherwise CUDA_VISIBLE_DEVICES (set by a scheduler or by hand) maps CUDA's order to them."""
    host = socket.gethostname()
    for variable in ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES"):
        visible = [v.strip() for v in os.environ.get(variable, "").split(",") if v.strip()]
        if visible:
            return [f"{host}-{v}" for v in visible[:count]]
    return [f"{host}-{i}" for i in range(count)]


def check(preference: str, count_gpus: Callable[[], int] = _cuda_count) -> None:
    """Refuse a device preference this machine cannot satisfy, saying what it has. "auto" and "cpu" always
    work; "cuda" needs a GPU; "cuda:k" needs at least k + 1 (torch is imported only for these)."""
    if not preference.startswith("cuda"):
        return
    count = count_gpus()
    if count == 0:
        raise RuntimeError(f"{preference} was asked for, but no CUDA GPU is visible here; use device: auto or cpu")
    if ":" in preference and int(preference.split(":")[1]) >= count:
        raise RuntimeError(
            f"{preference} was asked for, but this machine has {count} GPU(s): cuda:0 to cuda:{count - 1}"
        )


def use_tf32(enabled: bool) -> None:
    """Let CUDA's float32 matrix products and cuDNN's convolutions use TF32 (10-bit mantissas in the
    products, float32 sums), or keep them IEEE float32. PyTorch's own defaults differ between the two
    (products float32, convolutions TF32), so a job always sets both. The CPU is unaffected either way."""
    import torch

    mode = "tf32" if enabled else "ieee"
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # PyTorch >= 2.9 (the older flags are deprecated)
        torch.backends.cuda.matmul.fp32_precision = mode
        torch.backends.cudnn.conv.fp32_precision = mode
    else:
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


def lock_folder(lock_dir: str | os.PathLike | None = None) -> Path:
    """Where the GPU leases are: `lock_dir` (config key gpu_lock_dir), or by default a folder of this user's
    alone in the temporary directory, which another local user cannot plant a link or a file in."""
    if lock_dir is None:
        return private_folder(Path(tempfile.gettempdir()) / f"memorization-gpu-leases-{os.getuid()}")
    Path(lock_dir).mkdir(parents=True, exist_ok=True)
    return Path(lock_dir)


def _open_lock(path: Path) -> int:
    """A lock file opened to be flock'ed and nothing else: read-only (nothing is ever written to it, so not
    even a hard link planted there can be harmed), never through a link, never blocking on a FIFO, and only a
    regular file; in a folder shared by several users, one user's lock file is another's to lock too."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as err:
        raise Refusal(f"{path} cannot be a GPU lease's lock file ({err.strerror}); remove it, or set "
                           "gpu_lock_dir to a folder of your own") from None  # fmt: skip
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise Refusal(f"{path} is not a regular file; remove it, or set gpu_lock_dir to a folder of your own")
    return fd


@contextmanager
def lease(
    preference: str = "auto",
    lock_dir: str | os.PathLike | None = None,
    *,
    count_gpus: Callable[[], int] = _cuda_count,
    poll_seconds: float = 5.0,
    tf32: bool = False,
) -> Iterator[str]:
    """Yield the device string this job should use ("cpu" or "cuda:k"), holding a GPU lease meanwhile.

    preference: "auto" (a GPU when there is one), "cpu", "cuda" (any GPU) or "cuda:k" (that GPU).
    lock_dir: where the lock files are (`lock_folder`).
    When every GPU is leased the call waits, saying so in the job's log, until one is free.
    tf32: whether the leased GPU's float32 products and convolutions may use TF32 (`use_tf32`).
    """
    granted = [
        f"{k}={os.environ[k]}"
        for k in ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES")
        if os.environ.get(k)
    ]
    if granted:  # what a scheduler gave this job (SLURM sets CUDA_VISIBLE_DEVICES under --gpus)
        print(f"GPUs granted by the environment: {' '.join(granted)}", file=sys.stderr, flush=True)
    count = 0 if preference == "cpu" else count_gpus()
    if count == 0:
        if preference.startswith("cuda"):
            raise RuntimeError(f"device: {preference} was asked for in the config, but no CUDA GPU is visible")
        yield "cpu"
        return
    ids = _physical_ids(count)
    candidates = [int(preference.split(":")[1])] if ":" in preference else list(range(len(ids)))
    folder = lock_folder(lock_dir)
    waited = False
    while True:
        for k in candidates:
            fd = _open_lock(folder / f"gpu-{ids[k]}.lock")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                use_tf32(tf32)
                precision = "TF32" if tf32 else "float32"
                print(f"leased GPU {ids[k]} (cuda:{k}) via {folder}; {precision} products", file=sys.stderr, flush=True)
                yield f"cuda:{k}"
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            return
        if not waited:
            print(
                f"all {len(candidates)} GPU(s) are leased by other jobs; waiting (run snakemake with "
                f"--resources gpu=N to queue jobs instead)",
                file=sys.stderr,
                flush=True,
            )
            waited = True
        time.sleep(poll_seconds)
