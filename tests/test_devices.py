"""GPU leases with a faked device count: concurrent jobs get different GPUs, a dead job frees its GPU."""

import multiprocessing as mp
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from memorization.engine.devices import lease
from memorization.results.files import Refusal


def hold(lock_dir, count, queue, seconds):
    with lease("auto", lock_dir, count_gpus=lambda: count, poll_seconds=0.05) as device:
        queue.put((os.getpid(), device))
        time.sleep(seconds)


def test_concurrent_jobs_get_different_gpus_and_a_third_waits(tmp_path, monkeypatch):
    for variable in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS"):
        monkeypatch.delenv(variable, raising=False)
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    first = ctx.Process(target=hold, args=(tmp_path, 2, queue, 30))
    second = ctx.Process(target=hold, args=(tmp_path, 2, queue, 30))
    first.start()
    second.start()
    got = dict(queue.get(timeout=10) for _ in range(2))
    assert sorted(got.values()) == ["cuda:0", "cuda:1"]
    third = ctx.Process(target=hold, args=(tmp_path, 2, queue, 0))
    third.start()
    time.sleep(0.5)
    assert queue.empty()  # both GPUs are leased: the third job waits
    os.kill(first.pid, signal.SIGKILL)  # the kernel frees a dead job's lock
    pid, device = queue.get(timeout=10)
    assert pid == third.pid and device == got[first.pid]
    second.kill()
    for p in (first, second, third):
        p.join(10)


def test_cpu_when_no_gpu_and_a_clear_error_when_one_is_demanded(tmp_path):
    with lease("auto", tmp_path, count_gpus=lambda: 0) as device:
        assert device == "cpu"
    with lease("cpu", tmp_path, count_gpus=lambda: 4) as device:
        assert device == "cpu"
    with pytest.raises(RuntimeError, match="no CUDA GPU is visible"), lease("cuda", tmp_path, count_gpus=lambda: 0):
        pass


def test_a_scheduler_set_visible_device_list_is_respected(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_GPUS", raising=False)
    monkeypatch.delenv("SLURM_STEP_GPUS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    host = socket.gethostname()
    with lease("auto", tmp_path, count_gpus=lambda: 2) as a, lease("auto", tmp_path, count_gpus=lambda: 2) as b:
        assert (a, b) == ("cuda:0", "cuda:1")
        # locks carry physical ids, so a job that sees a different subset still avoids GPUs 5 and 7
        assert sorted(p.name for p in tmp_path.iterdir()) == [f"gpu-{host}-5.lock", f"gpu-{host}-7.lock"]


def test_under_slurm_device_cgroups_two_jobs_on_one_node_get_their_own_gpus(tmp_path, monkeypatch):
    """Each SLURM job sees its GPU as CUDA device 0; only SLURM_JOB_GPUS tells them apart."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    jobs = []
    for real in ("2", "3"):
        monkeypatch.setenv("SLURM_JOB_GPUS", real)  # the child inherits the environment at fork
        job = ctx.Process(target=hold, args=(tmp_path, 1, queue, 5))
        job.start()
        jobs.append(job)
    got = sorted(queue.get(timeout=10)[1] for _ in jobs)
    assert got == ["cuda:0", "cuda:0"]  # neither waited for the other
    host = socket.gethostname()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"gpu-{host}-2.lock", f"gpu-{host}-3.lock"]
    for job in jobs:
        job.kill()
        job.join(10)


def _precision():
    import torch

    return torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision


def test_a_leased_gpu_computes_in_ieee_float32_unless_the_config_asks_for_tf32(tmp_path):
    # PyTorch's defaults differ (products float32, convolutions TF32): a job sets both, either way
    with lease("auto", tmp_path, count_gpus=lambda: 1, tf32=True) as device:
        assert device == "cuda:0" and _precision() == ("tf32", "tf32")
    with lease("auto", tmp_path, count_gpus=lambda: 1) as device:
        assert _precision() == ("ieee", "ieee")


def test_a_link_or_a_fifo_planted_where_a_lock_goes_is_refused_and_left_alone(tmp_path, monkeypatch):
    """Was: the lock was opened through any link, truncated and written: another local user who planted a link
    in the shared /tmp folder made a GPU job overwrite a file of its user's."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("SLURM_JOB_GPUS", raising=False)
    monkeypatch.delenv("SLURM_STEP_GPUS", raising=False)
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / f"gpu-{socket.gethostname()}-0.lock").symlink_to(victim)
    os.mkfifo(shared / f"gpu-{socket.gethostname()}-1.lock")
    for k in (0, 1):
        with (
            pytest.raises(RuntimeError, match="remove it, or set gpu_lock_dir"),
            lease(f"cuda:{k}", shared, count_gpus=lambda: 2),
        ):
            pass
    assert victim.read_text() == "keep me\n"
    with lease("auto", tmp_path / "mine", count_gpus=lambda: 1):  # a lock file is read, never written
        assert (tmp_path / "mine" / f"gpu-{socket.gethostname()}-0.lock").stat().st_size == 0


def test_the_default_folder_is_this_users_alone(tmp_path, monkeypatch):
    from memorization.engine.devices import lock_folder

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    folder = lock_folder()
    assert folder.parent == tmp_path and folder.stat().st_mode & 0o777 == 0o700
    folder.chmod(0o755)  # opened to others: refused, not used
    with pytest.raises(Refusal, match="not a folder of this user's alone"):
        lock_folder()


def lease_as(uid, folder, queue):
    """A job of another local user: this process's code, that user's identity."""
    os.setuid(uid)
    try:
        with lease("auto", folder, count_gpus=lambda: 1, poll_seconds=0.05) as device:
            queue.put(device)
    except Exception as err:  # what the other user would see
        queue.put(f"{type(err).__name__}: {err}")


@pytest.mark.skipif(os.getuid() != 0, reason="needs root, to run a job as a second local user")
def test_two_users_lease_gpus_from_one_shared_folder(monkeypatch):
    """Was: after one user's lease the lock was 0644 and the next user's job crashed opening it for writing."""
    import shutil
    import tempfile

    for variable in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS"):
        monkeypatch.delenv(variable, raising=False)
    shared = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        shared.chmod(0o1777)  # as /tmp: every user writes, none removes another's files
        with lease("auto", shared, count_gpus=lambda: 1) as device:
            assert device == "cuda:0"
        ctx = mp.get_context("fork")
        queue = ctx.Queue()
        other = ctx.Process(target=lease_as, args=(65534, shared, queue))
        other.start()
        assert queue.get(timeout=10) == "cuda:0"
        other.join(10)
    finally:
        shutil.rmtree(shared)
