"""The loss-sensitivity replay: its time and peak memory at the authors' stride, against the replay that keeps
the whole unrolled graph (tests/reference_replay.py, the replay before the segmented sweep), in one run.

The set-up is Fig. 3's identity-label panel: MLP 64-32-32-1000 (one class per example) on 1,000 training
examples of digits, and 196-32-32-1000 on 1,000 real 14x14 MNIST digits (mnist5k14, the paper's own set-up);
batch 32 drawn with replacement, loss -log(0.1 + p_y)/C, one seed, float32 as the metric jobs run it,
replayed from initialisation. Each measurement runs in a fresh process, so its peak resident memory
(ru_maxrss) is its own:

- the whole graph against the segments at T = 1000 (window 500, stride 2: 250 output steps), same outputs;
- the segments at T = 5000 over the authors' window (500 at stride 2), on digits and on mnist5k14;
- the segments at T = 30000 with a short window (20 at stride 2): memory is set by the segments, not the
  outputs, so this shows how it grows with T without the half hour of a full window.

    python benchmarks/replay_memory.py [--quick] [--json FILE] [--docs docs/performance.md]
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(replay: str, dataset: str, T: int, window: int, stride: int, threads: int) -> dict:
    """One replay in this process: seconds and peak resident memory (GB)."""
    import torch

    from memorization import config as S
    from memorization.engine.data import build_noisy_dataset
    from memorization.measures.sensitivity import input_jacobian, input_norm, window_steps

    torch.set_num_threads(threads)
    spec = S.resolve(
        {
            "dataset": dataset,
            "train_size": 1000,
            "width": 32,
            "lr": 0.05,
            "sampling": "replacement",
            "loss": "smoothed_log",
            "label_noise": "identity",
            "steps": T,
            "checkpoints": {"unit": "step", "at": [T]},
        }
    )
    spec = spec.replace(seeds=[0])
    data = build_noisy_dataset(spec.data)
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    steps = window_steps(T, window, stride)
    step_ms = training_step_ms(spec, x, y, data.n_classes)
    a = torch.randn(2048, 2048)
    a @ a
    begin = time.perf_counter()
    for _ in range(5):
        a @ a
    sgemm = 5 * 2 * 2048**3 / (time.perf_counter() - begin) / 1e9
    start = time.perf_counter()
    if replay == "whole graph":
        sys.path.insert(0, str(ROOT))
        from tests.reference_replay import input_jacobian as whole_jacobian
        from tests.reference_replay import replay_losses

        batches, L = replay_losses(spec, x, y, data.n_classes, steps)
        jacobians = whole_jacobian(batches, L, len(x), chunk=256)
    else:
        jacobians = input_jacobian(spec, x, y, data.n_classes, steps, chunk=256)
    g = torch.cat([input_norm(j, "l1", 1) for _, j in jacobians]).mean(0)
    seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    return {
        "replay": replay,
        "dataset": dataset,
        "inputs": int(x[0].numel()),
        "T": T,
        "window": window,
        "stride": stride,
        "outputs": len(steps),
        "seconds": round(seconds, 1),
        "peak_gb": round(peak_gb, 2),
        "checksum": float(g.sum()),
        "threads": threads,
        "training_step_ms": round(step_ms, 3),
        "sgemm_gflops": round(sgemm),
        **(predicted(spec, tuple(x.shape[1:]), data.n_classes, T, len(steps)) if replay == "segments" else {}),
    }


def training_step_ms(spec, x, y, n_classes, steps: int = 200) -> float:
    """Milliseconds of one training step of the same model and batch (the unit of the replay's cost)."""
    import torch

    from memorization.engine.models import Arch
    from memorization.engine.sgd import initial_state, train_step

    arch = Arch.from_spec(spec, tuple(x.shape[1:]), n_classes)
    state = initial_state(arch, spec.seeds, "cpu")
    idx = torch.randint(len(x), (1, spec.batch_size), generator=torch.Generator().manual_seed(0))
    kwargs = {"lr": spec.lr, "momentum": spec.momentum, "groups": [slice(0, 1)], "loss": spec.loss}
    train_step(arch, *state, x[idx], y[idx], **kwargs)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(arch, *state, x[idx], y[idx], **kwargs)
    return (time.perf_counter() - start) / steps * 1e3


def predicted(spec, shape, n_classes, T, outputs) -> dict:
    """The segment length the replay chose and the peak the jobs' memory model predicts for it."""
    from memorization.engine import memory
    from memorization.engine.architecture import Arch

    arch = Arch.from_spec(spec, shape, n_classes)
    rows, n_train = min(256, outputs), spec.train_size
    return {
        "segment": memory.replay_segment(T),
        "model_gb": round(memory.job_mb(memory.replay_bytes(arch, 1, spec.batch_size, n_train, T, rows)) / 1024, 2),
    }


def in_fresh_process(*args) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--one", *map(str, args)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--one", nargs=6, metavar=("REPLAY", "DATASET", "T", "WINDOW", "STRIDE", "THREADS"), help=argparse.SUPPRESS
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="T = 1000 comparison only")
    ap.add_argument("--json", help="also write the measurements here")
    ap.add_argument("--docs", help="write the table into this Markdown file's generated replay section")
    ap.add_argument("--report", help="report the measurements of an earlier --json file instead of measuring")
    args = ap.parse_args()
    if args.one:
        replay, dataset, T, window, stride, threads = args.one
        print(json.dumps(measure(replay.replace("_", " "), dataset, int(T), int(window), int(stride), int(threads))))
        return
    runs = [("whole_graph", "digits", 1000, 500, 2), ("segments", "digits", 1000, 500, 2)]
    if not args.quick:
        runs += [
            ("segments", "digits", 5000, 500, 2),
            ("segments", "mnist5k14", 5000, 500, 2),
            ("segments", "digits", 30000, 20, 2),
        ]
    if args.report:
        results = json.loads(Path(args.report).read_text())
    else:
        results = [in_fresh_process(*run, args.threads) for run in runs]
    text = report(results)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if args.docs:
        from memorization.pipeline.readme import REPLAY, into_readme

        into_readme(args.docs, REPLAY, text)


def report(results: list[dict]) -> str:
    """The measurements as a Markdown table and the ratios of the T = 1000 pair."""
    import platform

    import torch

    lines = [
        f"Loss-sensitivity replay, identity labels (MLP inputs-32-32-1000, 1,000 training examples), 1 seed, float32, "
        f"torch {torch.__version__}, {platform.machine()} with {results[0]['threads']} threads "
        f"(`python benchmarks/replay_memory.py`):",
        "",
        "| replay | data (inputs) | T | window | stride | output steps | segment | seconds "
        "| training steps per replayed step | peak GB | memory model GB | sgemm GFLOP/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        per_step = r["seconds"] * 1e3 / (r["T"] * r["training_step_ms"]) if "training_step_ms" in r else None
        lines.append(
            f"| {r['replay']} | {r.get('dataset', 'digits')} ({r.get('inputs', 64)}) | {r['T']} | {r['window']} "
            f"| {r['stride']} | {r['outputs']} | {r.get('segment', '')} "
            f"| {r['seconds']:.0f} | {'' if per_step is None else f'{per_step:.0f}'} | {r['peak_gb']:.2f} "
            f"| {r.get('model_gb', '')} | {r.get('sgemm_gflops', '')} |"
        )
    whole, segments = results[0], results[1]
    agree = abs(whole["checksum"] - segments["checksum"]) / abs(whole["checksum"])
    lines += [
        "",
        f"At T = 1000 with the same outputs the segments take {whole['seconds'] / segments['seconds']:.2f}x less time "
        f"and {whole['peak_gb'] / segments['peak_gb']:.1f}x less memory than the whole graph (mean sensitivities "
        f"agree to {agree:.1e} relative).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
