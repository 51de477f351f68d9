"""What the per-example scores cost training, and what the batched engine gives subset trainings, in one run:

1. the training loop with its presentations recorded (the forgetting and AUM record: correctness and margin
   of every mini-batch presentation, written each epoch) against the same loop with the record left out, on
   the default's `scores` runs (1,000 MNIST digits, MLP 784-256-256-10, 20 epochs, 4 seeds);
2. the default's `heldout` subset trainings (70% subsets, 20 epochs): models trained per minute with 32
   seeds in one job against one seed at a time.

Alternating rounds (a busy machine slows both alike): the best time of each, and the median of the rounds'
ratios; 1 thread, as the workflow's jobs run.

    python benchmarks/scores_training.py [--rounds 3] [--docs docs/performance.md]
"""

import argparse
import platform
import statistics
import tempfile
import time

import torch

import memorization.engine.train as T
from memorization import config as C
from memorization import papers  # noqa: F401 (config.yaml names its figures)
from memorization.engine.data import build_noisy_dataset


def seconds(spec, data, recorded: bool) -> float:
    """One training run, with its presentations recorded or, as the loop was before the scores, without: each
    group's step told to record nothing and no presentation file written."""
    group_step, write = T.seed_group_step, T.write_presentations
    if not recorded:
        T.seed_group_step = lambda *args, presented=None, **kwargs: group_step(*args, presented=None, **kwargs)
        T.write_presentations = lambda run, state: None
    try:
        start = time.perf_counter()
        T.train_run(spec, data, tempfile.mkdtemp(), progress=False)
        return time.perf_counter() - start
    finally:
        T.seed_group_step, T.write_presentations = group_step, write


def config_run(experiment: str, **match) -> C.RunSpec:
    """The default config's run of `experiment` whose spec has the values in `match`."""
    runs = C.load_config(files=["config.yaml"]).experiments[experiment]
    return next(s for s in runs if all(getattr(s, k) == v for k, v in match.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--docs", help="write the table into this Markdown file's generated scores section")
    args = ap.parse_args()
    torch.set_num_threads(1)

    scores = config_run("scores", label_noise="random", label_noise_fraction=0.2)
    data = build_noisy_dataset(scores.data)
    times = {True: [], False: []}
    for _ in range(args.rounds):
        for recorded in (False, True):
            times[recorded].append(seconds(scores, data, recorded))
    # each round's ratio, then their median: the VM's speed drifts between rounds more than the record costs
    ratios = sorted(w / wo for w, wo in zip(times[True], times[False]))
    overhead = statistics.median(ratios) - 1

    heldout = config_run("heldout", subset_fraction=0.7)
    held_data = build_noisy_dataset(heldout.data)
    batched, alone = [], []
    for _ in range(args.rounds):
        batched.append(seconds(heldout, held_data, True) / len(heldout.seeds))
        alone.append(sum(seconds(heldout.replace(seeds=[s]), held_data, True) for s in range(4)) / 4)
    per_minute = 60 / min(batched), 60 / min(alone)

    text = "\n".join(
        [
            f"The per-example scores' cost in training and the subset trainings' throughput, torch "
            f"{torch.__version__}, {platform.machine()} with 1 thread, {args.rounds} alternating rounds "
            "(`python benchmarks/scores_training.py`):",
            "",
            "| | |",
            "|---|---|",
            f"| a `scores` run ({len(scores.seeds)} seeds, {scores.epochs} epochs), presentations recorded, s "
            f"| {min(times[True]):.2f} |",
            f"| the same loop without the record, s | {min(times[False]):.2f} |",
            f"| the record's cost, median of the rounds' ratios (range) | {overhead:+.1%} "
            f"({ratios[0] - 1:+.1%} to {ratios[-1] - 1:+.1%}) |",
            f"| `heldout` subset trainings, models per minute, {len(heldout.seeds)} seeds in one job "
            f"| {per_minute[0]:.0f} |",
            f"| the same, one seed at a time | {per_minute[1]:.0f} |",
            f"| one job / one at a time | {per_minute[0] / per_minute[1]:.1f}x |",
        ]
    )
    print(text)
    if args.docs:
        from memorization.pipeline.readme import SCORES, into_readme

        into_readme(args.docs, SCORES, text + "\n")


if __name__ == "__main__":
    main()
