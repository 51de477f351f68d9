"""An interrupt of Snakemake stops its jobs.

Why our own: Snakemake's local executor answers SIGINT ("Terminating processes on user request") by waiting
for its running jobs to end (it shuts its thread pool down; it kills nothing). A Ctrl-C at a terminal reaches
the jobs anyway, as they share Snakemake's process group; `kill -INT <snakemake's pid>`, a parent process or a
supervisor that signals Snakemake alone does not, and a training job would go on to its end, unrecorded.
Snakemake has no setting for it, so the workflow (Snakefile, `onstart`) passes the interrupt on to every
process below Snakemake, as a Ctrl-C would have: each job stops and leaves its resume point, and training
resumes from it on the next run.

SIGTERM is left as Snakemake has it: "exit after finishing currently running jobs".
"""

from __future__ import annotations

import contextlib
import signal

import psutil  # Snakemake's own dependency: the process tree, portably


def interrupt_jobs(pid: int | None = None) -> list[int]:
    """Send SIGINT to every process below `pid` (default: this one); the pids it was sent to."""
    try:
        below = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    sent = []
    for process in below:
        with contextlib.suppress(psutil.Error):
            process.send_signal(signal.SIGINT)
            sent.append(process.pid)
    return sent


def stop_jobs_on_interrupt() -> None:
    """From now on, a SIGINT of this process (Snakemake's) interrupts its jobs too, then does what it did.
    Call in the main thread (Snakemake's `onstart` is). Where SIGINT is ignored (a background job of a
    script), it stays ignored."""
    before = signal.getsignal(signal.SIGINT)
    if before == signal.SIG_IGN:
        return

    def on_interrupt(signum, frame):
        interrupt_jobs()
        if callable(before):
            before(signum, frame)
        else:  # SIG_DFL or None (set outside Python): an interrupt
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_interrupt)
