"""Warm job processes (memorization.warm): a job handed to a server's fork runs as it would alone (its working
directory, log, output, failure and status), one server serves the jobs that follow, and no server is used
where warm jobs are off or inside a batch system's job."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from memorization.pipeline import warm

WORKFLOW = str(Path(__file__).resolve().parents[1] / "workflow")


def servers() -> list[psutil.Process]:
    """The running servers of this package, interpreter and environment (their socket's name is in their
    command line)."""
    name = warm._address(warm._key()).lstrip("\0")
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if "warm.serve" in " ".join(proc.info["cmdline"] or []) and name in " ".join(proc.info["cmdline"]):
            found.append(proc)
    return found


def kill_servers() -> None:
    """Kill the running servers and wait until they are gone: a server that a SIGKILL has not yet ended still
    listens, and a job that connects to it then loses its server and runs in its own process (CI saw the
    next test's job do so and find no server)."""
    killed = servers()
    for proc in killed:
        proc.kill()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(proc) for proc in killed):
        time.sleep(0.05)
    assert not any(_alive(proc) for proc in killed), "a killed server is still running"


def _alive(proc: psutil.Process) -> bool:
    # an orphaned server's zombie waits for an init that may never reap it: it no longer listens
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def tmp(tmp_path):
    """A TMPDIR of the test's own (where the lock files go), and no server running before or after."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    kill_servers()
    yield folder
    kill_servers()


def client(cwd: Path, tmp: Path, function: str, log: str, extra_env=None, **kwargs):
    code = (
        f"import sys; sys.path.insert(0, {WORKFLOW!r}); from memorization.pipeline import warm; "
        f"warm.call({function!r}, {log!r}, **{kwargs!r})"
    )
    env = {**os.environ, "TMPDIR": str(tmp), **(extra_env or {})}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_a_job_runs_in_a_warm_child_and_the_next_job_reuses_its_server(tmp_path, tmp):
    args = {"name": "digits", "data_root": "data", "download": False}
    done = client(tmp_path, tmp, "clean_dataset", "one.log", out="one.npz", **args)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "one.npz").is_file()  # relative paths: the child works in the job's folder
    assert "one.npz: the clean digits splits" in (tmp_path / "one.log").read_text()
    (server,) = servers()
    assert list((tmp / f"memorization-warm-{os.getuid()}").glob("*.lock"))  # the one that started it

    again = client(tmp_path, tmp, "clean_dataset", "two.log", out="two.npz", **args)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "two.npz").is_file() and servers() == [server]


def test_a_failing_job_fails_with_its_traceback_in_its_log(tmp_path, tmp):
    failed = client(tmp_path, tmp, "clean_dataset", "bad.log", name="nope", out="x.npz", data_root=".", download=False)
    assert failed.returncode == 1
    assert "nope" in (tmp_path / "bad.log").read_text() and "Traceback" in (tmp_path / "bad.log").read_text()
    assert servers(), (tmp_path / "bad.log").read_text()  # it did run warm
    assert not (tmp_path / "x.npz").exists()


def test_a_kill_of_the_job_kills_its_child(tmp_path, tmp):
    # a job that sleeps: the train job of a spec that cannot be read would fail at once, so a long sleep
    # is had from the dataset job reading a FIFO that nobody writes
    fifo = tmp_path / "never"
    os.mkfifo(fifo)
    code = (
        f"import sys; sys.path.insert(0, {WORKFLOW!r}); from memorization.pipeline import warm; "
        f"warm.call('make_dataset', 'slow.log', spec={{}}, clean={str(fifo)!r}, out='y.npz')"
    )
    job = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "TMPDIR": str(tmp)})
    deadline = time.monotonic() + 120
    children = []
    while time.monotonic() < deadline and not children:
        time.sleep(0.2)
        children = [c for s in servers() for c in s.children()]
    assert children, "the job never reached a warm child"
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=30) != 0
    psutil.wait_procs(children, timeout=30)
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)


@pytest.mark.parametrize("how", ["off", "batch job"])
def test_no_server_where_warm_jobs_are_off_or_inside_a_batch_job(tmp_path, tmp, how):
    extra, warm = ({}, False) if how == "off" else ({"SLURM_JOB_ID": "1"}, True)
    args = {"name": "digits", "out": "z.npz", "data_root": "data", "download": False}
    done = client(tmp_path, tmp, "clean_dataset", "z.log", extra_env=extra, warm=warm, **args)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "z.npz").is_file() and not servers()
