"""GPU measurements of the engine, in at most about 8 minutes, into one JSON file. Without CUDA it says so
and exits 0.

    python benchmarks/gpu.py [--out results/gpu.json] [--budget 480]

What it measures (each section is timed and kept even if a later one fails or the budget runs out):
 1. the CUDA-only tests (tests/test_cuda.py);
 2. the card's float32 matmul peak (TF32 off) and its TF32 peak, on 8192^2 matrices;
 3. achieved FLOP/s of the paper MLP's training step (784-4096-4096-10, batch 32) for 1, 3, 10 and 30
    stacked seeds, against that peak;
 4. the paper CNN's training step (CIFAR-10 shape, batch 128, 3 seeds);
 5. LASS points per second on the paper MLP (r = 0.3, 100 iterations);
 6. a loss-sensitivity replay of the 196-32-32-10 net (window 500 at stride 2) at growing T until ~60 s,
    extrapolated to the paper's T = 100k;
 7. the engine against a one-seed-at-a-time DataLoader loop on the Fig. 1 workload at paper width (100 seeds,
    one epoch of 1000 examples);
 8. the cost plan's calibration for configs/paper.yaml on this card, and the plan on 2 such cards.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "results" / "gpu.json"))
    ap.add_argument("--budget", type=float, default=480.0, help="seconds for all sections together")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA device here, nothing to measure (it runs on a machine with a GPU)")
        return 0
    sys.path.insert(0, str(ROOT / "workflow"))
    start = time.perf_counter()
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda}
    sections = [
        ("tests", tests),
        ("matmul_peak", matmul_peak),
        ("mlp_step", mlp_step),
        ("cnn_step", cnn_step),
        ("lass", lass_rate),
        ("replay", replay),
        ("fig1_engine_vs_loop", fig1),
        ("plan", paper_plan),
    ]
    for name, fn in sections:
        left = args.budget - (time.perf_counter() - start)
        if left < 20:
            out[name] = {"skipped": "time budget used up"}
            continue
        t0 = time.perf_counter()
        try:
            out[name] = fn(out, left)
        except Exception as err:  # keep what was measured; say what failed
            out[name] = {"error": f"{type(err).__name__}: {err}"}
        out[name]["seconds"] = round(time.perf_counter() - t0, 1)
        print(name, json.dumps(out[name]), flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


def _time(fn, repeats):
    import torch

    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeats


def tests(out, left):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "cuda", str(ROOT / "tests" / "test_cuda.py")],
        capture_output=True,
        text=True,
        timeout=min(left, 180),
    )
    return {"returncode": proc.returncode, "summary": proc.stdout.strip().splitlines()[-1:]}


def matmul_peak(out, left):
    import torch

    a = torch.randn(8192, 8192, device="cuda")
    result = {}
    for name, tf32 in (("fp32_tflops", False), ("tf32_tflops", True)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        result[name] = round(2 * 8192**3 / _time(lambda: a @ a, 10) / 1e12, 1)
    torch.backends.cuda.matmul.allow_tf32 = False
    return result


def _train_step_rate(spec, shape, classes, repeats):
    import torch

    from memorization.models import Arch
    from memorization.sgd import initial_state, train_step

    seeds = list(spec["seeds"])
    arch = Arch.from_spec(spec, shape, classes)
    params, buffers, velocity = initial_state(arch, seeds, "cuda")
    x = torch.rand(len(seeds), spec["batch_size"], *shape, device="cuda")
    y = torch.randint(classes, (len(seeds), spec["batch_size"]), device="cuda")
    return _time(
        lambda: train_step(arch, params, buffers, velocity, x, y, lr=0.01, momentum=0.0, groups=[slice(0, len(seeds))]),
        repeats,
    )


def mlp_step(out, left):
    from memorization import configuration as S

    peak = out.get("matmul_peak", {}).get("fp32_tflops")
    params = 784 * 4096 + 4096 * 4096 + 4096 * 10
    result = {}
    for seeds in (1, 3, 10, 30):
        spec = {**S.resolve({"dataset": "mnist", "width": 4096}), "seeds": list(range(seeds))}
        seconds = _train_step_rate(spec, (1, 28, 28), 10, 50)
        tflops = 6 * 32 * params * seeds / seconds / 1e12  # forward + backward ~ 3 x 2 x batch x weights
        result[f"{seeds}_seeds"] = {
            "ms_per_step": round(seconds * 1e3, 3),
            "tflops": round(tflops, 2),
            "of_peak": round(tflops / peak, 3) if peak else None,
        }
    return result


def cnn_step(out, left):
    from memorization import configuration as S

    spec = {**S.resolve({"dataset": "cifar10", "arch": "cnn", "batch_size": 128}), "seeds": [0, 1, 2]}
    return {"ms_per_step_3_seeds": round(_train_step_rate(spec, (3, 32, 32), 10, 20) * 1e3, 2)}


def lass_rate(out, left):
    import torch

    from memorization import configuration as S
    from memorization.lass import lass
    from memorization.models import Arch, forward, init_params

    arch = Arch.from_spec(S.resolve({"dataset": "mnist", "width": 4096}), (1, 28, 28), 10)
    params = {k: v.cuda() for k, v in init_params(arch, [0])[0].items()}
    x = torch.rand(1000, 1, 28, 28, device="cuda")
    seconds = _time(
        lambda: lass(
            lambda t: forward(arch, params, {}, t, train=False)[0][0],
            x,
            alpha=0.25 / 255,
            beta=0.2 / 255,
            r=0.3 / 255,
            max_iter=100,
        ),
        1,
    )
    return {"points_per_second_100_iterations": round(1000 / seconds, 1)}


def replay(out, left):
    import torch

    from memorization import configuration as S
    from memorization.sensitivity import loss_sensitivity

    result = {}
    x = torch.rand(1000, 1, 14, 14, device="cuda")
    y = torch.randint(10, (1000,), device="cuda")
    T = 500
    while True:
        spec = {
            **S.resolve(
                {
                    "dataset": "mnist14",
                    "train_size": 1000,
                    "width": 32,
                    "lr": 0.05,
                    "steps": T,
                    "sampling": "replacement",
                    "loss": "smoothed_log",
                }
            ),
            "seeds": [0],
        }
        t0 = time.perf_counter()
        loss_sensitivity(spec, x, y, 10, T, window=500, stride=2)
        torch.cuda.synchronize()
        result[f"T={T}"] = round(time.perf_counter() - t0, 1)
        if result[f"T={T}"] > 30 or T >= 100_000 or sum(result.values()) > min(left, 120) / 2:
            break
        T *= 2
    result["extrapolated_T=100000_seconds"] = round(result[f"T={T}"] * 100_000 / T, 0)
    return result


def fig1(out, left):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "fig1_engine_vs_dataloader.py"),
            "--width",
            "4096",
            "--device",
            "cuda",
        ],
        capture_output=True,
        text=True,
        timeout=min(left, 240),
    )
    return {"returncode": proc.returncode, "output": proc.stdout.strip().splitlines()[-6:]}


def paper_plan(out, left):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "memorization.plan",
            str(ROOT / "configs" / "paper.yaml"),
            "--devices",
            "2",
            "--device",
            "cuda",
            "--cache",
            str(ROOT / "results" / "gpu-calibration.json"),
        ],
        capture_output=True,
        text=True,
        timeout=min(left, 300),
        cwd=ROOT,
    )
    return {"returncode": proc.returncode, "plan": proc.stdout.strip().splitlines()[-4:], "stderr": proc.stderr[-500:]}


if __name__ == "__main__":
    sys.exit(main())
