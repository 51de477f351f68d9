"""The digits CNN's training step with its seeds stacked (one grouped convolution, groups = seeds) against the
same seeds stepped one at a time, in one run: the median of alternating rounds, so that a busy machine slows
both alike. Also its evaluation of 2,048 examples, stacked.

    python benchmarks/cnn_stacked_vs_loop.py [--seeds 2 8] [--threads 1] [--docs docs/performance.md]
"""

import argparse
import platform
import statistics
import time

import torch

from memorization import config as S
from memorization.engine.models import Arch
from memorization.engine.sgd import evaluate, initial_state, train_step


def step_ms(arch, n_seeds: int, rounds: int = 15, steps: int = 20) -> dict:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n_seeds, 32, *arch.in_shape, generator=gen)
    y = torch.randint(arch.n_classes, (n_seeds, 32), generator=gen)
    stacked = initial_state(arch, list(range(n_seeds)), "cpu")
    alone = [initial_state(arch, [s], "cpu") for s in range(n_seeds)]
    kwargs = {"lr": 0.01, "momentum": 0.9}

    def run_stacked():
        train_step(arch, *stacked, x, y, groups=[slice(0, n_seeds)], **kwargs)

    def run_loop():
        for s, state in enumerate(alone):
            train_step(arch, *state, x[s : s + 1], y[s : s + 1], groups=[slice(0, 1)], **kwargs)

    times = {"stacked": [], "loop": []}
    for fn in (run_stacked, run_loop):
        for _ in range(3):
            fn()
    for _ in range(rounds):
        for name, fn in (("stacked", run_stacked), ("loop", run_loop)):
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            times[name].append((time.perf_counter() - start) / steps * 1e3)
    xe = torch.rand(2048, *arch.in_shape, generator=gen)
    ye = torch.randint(arch.n_classes, (2048,), generator=gen)
    evaluate(arch, stacked[0], stacked[1], xe, ye)
    start = time.perf_counter()
    evaluate(arch, stacked[0], stacked[1], xe, ye)
    return {
        "seeds": n_seeds,
        "stacked": statistics.median(times["stacked"]),
        "loop": statistics.median(times["loop"]),
        "eval": (time.perf_counter() - start) * 1e3,
    }


def report(results: list[dict], arch, threads: int) -> str:
    lines = [
        f"The digits CNN (2 × {arch.channels} 5×5 convolutions, dense {'-'.join(map(str, arch.dense))}, batch 32) on "
        f"a CPU, torch {torch.__version__}, {platform.machine()} with {threads} thread(s), medians of alternating "
        "rounds (`python benchmarks/cnn_stacked_vs_loop.py`):",
        "",
        "| seeds | stacked step, ms | one seed at a time, ms | loop / stacked | evaluation of 2,048 examples, ms |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        ratio = r["loop"] / r["stacked"]
        lines.append(f"| {r['seeds']} | {r['stacked']:.1f} | {r['loop']:.1f} | {ratio:.1f}x | {r['eval']:.0f} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[2, 8])
    ap.add_argument("--threads", type=int, default=1, help="1: as the workflow's jobs run")
    ap.add_argument("--docs", help="write the table into this Markdown file's generated cnn section")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = S.resolve({"dataset": "digits", "arch": "cnn"})
    arch = Arch.from_spec(spec, (1, 8, 8), 10)
    text = report([step_ms(arch, n) for n in args.seeds], arch, args.threads)
    print(text)
    if args.docs:
        from memorization.pipeline.readme import CNN, into_readme

        into_readme(args.docs, CNN, text)


if __name__ == "__main__":
    main()
