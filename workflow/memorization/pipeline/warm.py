"""Warm job processes: a job runs in a fork of a process that has imported torch and this library already.

Why: every Snakemake job is a fresh interpreter, and importing torch, numpy, pandas and this package costs
2-3 s of a 4-8 s training job on a CPU (the digits default's 80 training jobs spent about a third of their
job-seconds importing). Where jobs run on this machine, the first job starts a server that imports them once
and then forks a child per job; the job script, which imports nothing heavy, hands the child its function,
arguments, working directory, environment and standard streams, forwards signals to it and exits with its
status. The child is the job in every way that matters to the workflow: it writes the job's log and outputs,
a kill of the job kills it, a failure fails the job.

Not used (the job runs in its own process, as before) where `warm_jobs: false`, where jobs run on a cluster
(the workflow turns it off: a child would run in another job's allocation), and whenever the server cannot be
reached. The server serves one interpreter, one copy of this package and one environment of the settings that
torch reads at import (its key); it exits after IDLE_S without a job, and a changed package gets a new one.
Only this user's processes talk to it (each side checks the other's uid).

Snakemake's benchmark files measure the job script's process: their `s` column is the job's wall time as
before, while max_rss and cpu_time are the script's, not the child's (run with warm_jobs: false to measure
those).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IDLE_S = 20.0  # the server exits when it has had no job for this long
START_S = 30.0  # how long a job waits for a server it started before running in its own process
PACKAGE = Path(__file__).resolve().parents[1]  # memorization/, every file of which the server imports
# environment variables that torch, its libraries or Python read when the server imports them: a job with
# other values gets another server
IMPORT_ENV = ("OMP_", "MKL_", "KMP_", "TORCH", "PYTORCH", "CUDA", "LD_", "PYTHON", "NVIDIA", "CUBLAS", "DNNL")


def call(function: str, log: str, mode: str = "w", *, warm: bool = True, **kwargs) -> None:
    """Run `memorization.pipeline.jobs.<function>(**kwargs)` with stdout and stderr in `log` (jobs.log_to): in a warm
    child when `warm` and a server can be had, else here. Returns when it has finished; a failure exits this
    process with the job's status."""
    conn = _connect() if warm and _usable() else None
    if conn is None:
        _run_here(function, log, mode, kwargs)
        return
    with conn:
        request = pickle.dumps((function, log, mode, kwargs, os.getcwd(), dict(os.environ), list(sys.path)))
        try:
            socket.send_fds(conn, [struct.pack("!Q", len(request))], [0, 1, 2])
            conn.sendall(request)
            (pid,) = struct.unpack("!q", _read(conn, 8))
        except OSError:  # the server was exiting (idle) and started nothing: the job runs here
            _run_here(function, log, mode, kwargs)
            return

        def forward(signum, _frame):  # a kill of the job is a kill of its child
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, forward)
        (status,) = struct.unpack("!q", _read(conn, 8))
    if status:
        sys.exit(status)


def _run_here(function: str, log: str, mode: str, kwargs: dict) -> None:
    from . import jobs

    jobs.log_to(log, mode)
    getattr(jobs, function)(**kwargs)


# set inside a batch system's job: its processes belong to that job's allocation (cgroup), a server's do not
BATCH_JOB_ENV = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "JOB_ID", "FLUX_JOB_ID")


def _usable() -> bool:
    return (
        sys.platform.startswith("linux")
        and hasattr(socket, "send_fds")
        and not any(name in os.environ for name in BATCH_JOB_ENV)
    )


def _read(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the warm job server closed the connection")
        data += chunk
    return data


# ----------------------------------------------------------------------------- finding or starting the server


def _key(env=os.environ) -> str:
    """What the server's imports depend on: the interpreter and its environment (sys.prefix: its
    site-packages), the package's files (names, sizes, mtimes) and the environment variables that torch and
    Python read at import (PYTHONPATH among them). Not the job's folder: every run of this checkout shares
    one server."""
    files = sorted(PACKAGE.rglob("*.py"))
    h = hashlib.sha256(repr((sys.executable, sys.prefix, sys.version)).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode())
    h.update(repr(sorted((k, v) for k, v in env.items() if k.startswith(IMPORT_ENV))).encode())
    return h.hexdigest()[:16]


def _folder() -> Path:
    """A directory only this user can enter, for the lock files that let one job start a server."""
    folder = Path(tempfile.gettempdir()) / f"memorization-warm-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    st = folder.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise PermissionError(f"{folder} is not this user's private directory")
    return folder


def _address(key: str) -> str:
    """The server's socket, in Linux's abstract namespace: no file to leave behind, and no limit from the
    length of a temporary directory's path (108 bytes for a socket file). Who connects is checked by uid on
    both sides (`_same_user`)."""
    return f"\0memorization-warm-{os.getuid()}-{key}"


def _same_user(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1] == os.getuid()


def _connect() -> socket.socket | None:
    key = _key()
    conn = _try(_address(key))
    if conn is not None:
        return conn
    # one job starts the server, the others wait for it: two jobs starting at once would start two
    try:
        lock = open(_folder() / f"{key}.lock", "w")  # noqa: SIM115 (closed below)
    except OSError:
        return None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _try(_address(key)) or _start(_address(key))


def _start(address: str) -> socket.socket | None:
    try:
        start = (
            f"import sys; sys.path[:0] = {sys.path!r}; from memorization.pipeline import warm; warm.serve({address!r})"
        )
        subprocess.Popen(
            [sys.executable, "-c", start], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True,
        )  # fmt: skip
    except OSError:
        return None
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        time.sleep(0.05)
        conn = _try(address)
        if conn is not None:
            return conn
    return None


def _try(address: str) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(address)
        if _same_user(conn):
            return conn
    except OSError:
        pass
    conn.close()
    return None


# ----------------------------------------------------------------------------- the server


def serve(address: str) -> None:
    """Import what jobs use, then fork a child per connection until IDLE_S pass without one. One thread: a
    selector over the listening socket, the clients and a pipe that SIGCHLD writes to (forking a process
    with other threads running is unsafe)."""
    # what the jobs import, once (nothing is computed: a fork after parallel work would be unsafe)
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import torch  # noqa: F401

    from .. import catalog, papers  # noqa: F401
    from ..engine import train  # noqa: F401
    from ..measures import metrics, scores, sensitivity  # noqa: F401
    from ..results import tables  # noqa: F401
    from . import jobs  # noqa: F401

    os.chdir("/")  # not holding a job's folder (each child goes to its job's)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(address)
    except OSError:  # a server of this key is running already
        return
    listener.listen(16)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, socket.socket] = {}  # pid -> its client's connection
    last = time.monotonic()
    while children or time.monotonic() - last < IDLE_S:
        ready, _, _ = select.select([listener, wake_r, *children.values()], [], [], 1.0)
        if wake_r in ready:
            os.read(wake_r, 4096)
        for conn in [c for c in ready if c not in (listener, wake_r)]:
            # a client that went away (killed): its child is killed too
            pid = next(p for p, c in children.items() if c is conn)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if listener in ready:
            _accept(listener, children, wake_r)
            last = time.monotonic()
        for pid, conn in list(children.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                with contextlib.suppress(OSError):  # its client is gone
                    conn.sendall(struct.pack("!q", code if code >= 0 else 128 - code))
                conn.close()
                del children[pid]
                last = time.monotonic()
    listener.close()  # a job connecting just now is refused and runs in its own process


def _accept(listener: socket.socket, children: dict, wake_r: int) -> None:
    conn, _ = listener.accept()
    try:
        if not _same_user(conn):
            raise PermissionError("another user")
        head, fds, _, _ = socket.recv_fds(conn, 8, 3)
        request = pickle.loads(_read(conn, struct.unpack("!Q", head)[0]))
    except Exception:
        conn.close()
        return
    pid = os.fork()
    if pid == 0:  # the job
        code = 1
        try:
            listener.close()
            conn.close()
            os.close(wake_r)
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(signum, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            for target, fd in enumerate(fds):  # the job's standard streams
                os.dup2(fd, target)
                os.close(fd)
            sys.stdin, sys.stdout, sys.stderr = (
                open(fd, how, closefd=False)  # noqa: SIM115 (for the rest of the process)
                for fd, how in ((0, "r"), (1, "w"), (2, "w"))
            )
            sys.__stdout__, sys.__stderr__ = sys.stdout, sys.stderr
            function, log, mode, kwargs, cwd, env, path = request
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(env)
            sys.path[:] = path
            _run_here(function, log, mode, kwargs)
            code = 0
        except SystemExit as err:
            code = err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
        except BaseException:
            sys.excepthook(*sys.exc_info())
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    for fd in fds:
        os.close(fd)
    conn.sendall(struct.pack("!q", pid))
    children[pid] = conn
