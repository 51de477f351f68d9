"""What TensorBoard's event files cost the default's training jobs (results.events): one run of each of
config.yaml's experiments (the first of its grid), trained with the event files written and without, back to
back (the order alternating between rounds: a busy machine slows both alike); the sum over the runs per round,
the median of the rounds' ratios; 1 thread, as the workflow's jobs run. Beside it, what a job pays once to
import the writer.

    python benchmarks/event_files.py [--rounds 3] [--docs docs/performance.md]
"""

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from memorization import config as C
from memorization import papers  # noqa: F401 (config.yaml names its figures)
from memorization.engine.data import build_noisy_dataset
from memorization.engine.train import train_run
from memorization.results.events import hparams_of


def seconds(spec, data, board: bool) -> float:
    start = time.perf_counter()
    train_run(spec, data, tempfile.mkdtemp(), progress=False, board=hparams_of(spec.as_dict()) if board else None)
    return time.perf_counter() - start


def import_seconds(repeat: int = 5) -> float:
    """The writer's import in a fresh interpreter that has torch already (as a training job has), best of
    `repeat`."""
    code = "import time, torch; t = time.perf_counter(); import torch.utils.tensorboard; print(time.perf_counter() - t)"
    return min(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
               for _ in range(repeat))  # fmt: skip


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--docs", help="write the table into this Markdown file's generated events section")
    args = ap.parse_args()
    torch.set_num_threads(1)
    config = C.load_config(files=["config.yaml"])
    runs = [specs[0] for specs in config.experiments.values()]
    runs = list({spec.run_id: spec for spec in runs}.values())
    data = {spec.run_id: build_noisy_dataset(spec.data) for spec in runs}
    times = {True: [], False: []}
    for r in range(args.rounds):  # each run off and on back to back, seconds apart: the VM drifts over minutes
        pairs = [
            {
                board: seconds(spec, data[spec.run_id], board)
                for board in ((False, True) if r % 2 == 0 else (True, False))
            }
            for spec in runs
        ]
        for board in (False, True):
            times[board].append(sum(pair[board] for pair in pairs))
    ratios = sorted(on / off for on, off in zip(times[True], times[False]))
    overhead = statistics.median(ratios) - 1
    text = "\n".join(
        [
            f"TensorBoard's event files in training, torch {torch.__version__}, {platform.machine()} with 1 thread, "
            f"{args.rounds} alternating rounds (`python benchmarks/event_files.py`):",
            "",
            "| | |",
            "|---|---|",
            f"| {len(runs)} runs, one of each experiment of config.yaml, without event files, s (best round) "
            f"| {min(times[False]):.1f} |",
            f"| the same with event files, s (best round) | {min(times[True]):.1f} |",
            f"| their cost, median of the rounds' ratios (range) | {overhead:+.1%} "
            f"({ratios[0] - 1:+.1%} to {ratios[-1] - 1:+.1%}) |",
            f"| importing the writer (torch.utils.tensorboard), once per job, s | {import_seconds():.3f} |",
        ]
    )
    print(text)
    if args.docs:
        from memorization.pipeline.readme import EVENTS, into_readme

        into_readme(args.docs, EVENTS, text + "\n")


if __name__ == "__main__":
    main()
