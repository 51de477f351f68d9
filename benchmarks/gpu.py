"""The engine on a GPU, in one run of about 6 minutes, into one JSON file; then its tables into the docs.

    python benchmarks/gpu.py [--out results/gpu.json] [--budget 330]      # on a machine with CUDA
    python benchmarks/gpu.py --device cpu --quick                          # every section at toy sizes, here
    python benchmarks/gpu.py --render results/gpu.json --docs docs/performance.md --readme README.md

Without CUDA (and no --device) it says so and exits 0. The sections, most needed first; each is timed and
kept even if a later one fails or the budget runs out:
 1. tests: the CUDA-only tests (tests/test_cuda.py);
 2. matmul_peak: the card's float32 (IEEE) and TF32 matmul rates on 8192^2 matrices;
 3. workflow: tests/slurm/tiny.yaml (every rule) end to end with Snakemake on the CPU, on the GPU with
    `--resources gpu=2` on the one card (the second GPU job must wait for the lease), and on the GPU with
    `tf32: true`; each GPU run's tables against the CPU run's (max absolute difference per table);
 4. mlp_step: the paper MLP's training step (784-4096-4096-10, batch 32) for 1, 3, 10 and 30 stacked
    seeds, eagerly and replayed from a captured CUDA graph, against the float32 peak;
 5. plan: the cost plan's calibration of configs/paper.yaml on this card and the plan on 2 such cards;
 6. cnn_step: the paper CNN's step (CIFAR-10 shape, batch 128, 3 seeds);
 7. lass: LASS points per second on the paper MLP (r = 0.3/255, 100 iterations);
 8. replay: the loss-sensitivity replay of the 196-32-32-10 net (window 500, stride 2) at growing T;
 9. fig1: the engine against the one-seed DataLoader loop on the Fig. 1 workload at width 4096.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "results" / "gpu.json"))
    ap.add_argument("--budget", type=float, default=330.0, help="seconds for all sections together")
    ap.add_argument("--device", help="measure on this device (default: cuda; cpu checks the script itself)")
    ap.add_argument("--quick", action="store_true", help="toy sizes: checks that every section runs")
    ap.add_argument("--only", help="comma-separated section names to run (default: all)")
    ap.add_argument("--render", metavar="JSON", help="instead: write the tables of a finished run's JSON")
    ap.add_argument("--docs", help="with --render: this Markdown file's generated GPU section")
    ap.add_argument("--readme", help="with --render: this README's generated GPU plan section")
    args = ap.parse_args()
    if args.render:
        render(json.loads(Path(args.render).read_text()), args.docs, args.readme)
        return 0
    import torch

    if args.device is None:
        if not torch.cuda.is_available():
            print("benchmarks/gpu.py: no CUDA device here, nothing to measure (it runs on a machine with a GPU)")
            return 0
        args.device = "cuda"
    start = time.perf_counter()
    out = {
        "device": torch.cuda.get_device_name(0) if args.device == "cuda" else f"cpu ({os.cpu_count()} cores)",
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "quick": args.quick,
    }
    chosen = args.only.split(",") if args.only else list(SECTIONS)
    for name in chosen:
        left = args.budget - (time.perf_counter() - start)
        if left < 15:
            out[name] = {"skipped": "time budget used up"}
            continue
        t0 = time.perf_counter()
        try:
            out[name] = SECTIONS[name](out, left, args)
        except Exception as err:  # keep what was measured; say what failed
            out[name] = {"error": f"{type(err).__name__}: {err}"}
        out[name]["seconds"] = round(time.perf_counter() - t0, 1)
        print(name, json.dumps(out[name]), flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


def _sync(device):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time(fn, repeats, device):
    """Seconds per call, after one warm-up call (kernels, allocator, cuBLAS handles)."""
    fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / repeats


def _run(cmd, timeout, **kwargs):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs)
    return proc.returncode, proc.stdout, proc.stderr


# ----------------------------------------------------------------------------- sections


def tests(out, left, args):
    if args.device != "cuda":
        return {"skipped": "the CUDA tests need CUDA"}
    code, stdout, stderr = _run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "cuda", ROOT / "tests/test_cuda.py"],
        min(left, 150),
        cwd=ROOT,
    )
    return {"returncode": code, "summary": stdout.strip().splitlines()[-1:], "tail": (stdout + stderr)[-1500:]}


def matmul_peak(out, left, args):
    import torch

    from memorization.engine.devices import use_tf32

    n = 1024 if args.quick else 8192
    a, b = torch.randn(n, n, device=args.device), torch.randn(n, n, device=args.device)
    result = {"n": n}
    for name, tf32 in (("fp32_tflops", False), ("tf32_tflops", True)):
        use_tf32(tf32)
        result[name] = round(2 * n**3 / _time(lambda: a @ b, 10, args.device) / 1e12, 2)
    use_tf32(False)
    return result


def workflow(out, left, args):
    """tests/slurm/tiny.yaml end to end: on the CPU, then on the device, then on the device with TF32, each
    device run's tables against the CPU run's. On a CPU-only check the 'device' runs run on the CPU too
    (and must then equal the first exactly: tf32 changes nothing on a CPU)."""
    import numpy as np
    import pandas as pd

    device = f"device={args.device}"
    runs = {"cpu": ["device=cpu"], "gpu": [device], "gpu_tf32": [device, "tf32=true"]}
    result, dirs = {}, {}
    for name, config in runs.items():
        dirs[name] = Path(tempfile.mkdtemp(prefix=f"gpu-workflow-{name}-"))
        t0 = time.perf_counter()
        code, stdout, stderr = _run(
            [sys.executable, "-m", "snakemake", "-s", ROOT / "Snakefile", "-d", dirs[name]]
            + ["--configfile", ROOT / "tests/slurm/tiny.yaml", "--workflow-profile", "none", "--quiet"]
            + ["--cores", str(min(os.cpu_count(), 8)), "--resources", "gpu=2", "--config", *config],
            max(30, left / 3),
        )
        logs = [p.read_text(errors="replace") for p in dirs[name].rglob("*.log")]
        result[name] = {
            "returncode": code,
            "seconds": round(time.perf_counter() - t0, 1),
            "jobs_on_gpu": sum("leased GPU" in log for log in logs),
            "jobs_that_waited_for_a_lease": sum("GPU(s) are leased by other jobs; waiting" in log for log in logs),
        }
        if code:
            result[name]["stderr"] = stderr[-2000:]
            return result
    tables = sorted(
        p.relative_to(dirs["cpu"]) for p in (dirs["cpu"] / "results" / "tiny" / "tables").rglob("*.parquet")
    )
    for name in ("gpu", "gpu_tf32"):
        diffs = {}
        for path in tables:
            a, b = pd.read_parquet(dirs["cpu"] / path), pd.read_parquet(dirs[name] / path)
            key = str(path.relative_to("results/tiny/tables").with_suffix(""))
            if list(a.columns) != list(b.columns) or len(a) != len(b):
                diffs[key] = {"mismatch": f"{a.shape} vs {b.shape}"}
                continue
            floats = [c for c in a.columns if a[c].dtype.kind == "f"]
            worst = {c: float(np.nanmax(np.abs(a[c].values - b[c].values), initial=0.0)) for c in floats}
            column = max(worst, key=worst.get) if worst else None
            scale = float(np.nanmax(np.abs(a[column].values), initial=0.0)) if column else 0.0
            diffs[key] = {
                "rows": len(a),
                "other_columns_differ": [c for c in a.columns if c not in floats and not (a[c] == b[c]).all()],
                "max_abs_diff": worst.get(column, 0.0),
                "column": column,
                "column_max_abs": scale,
            }
        result[f"{name}_vs_cpu"] = diffs
    for d in dirs.values():
        shutil.rmtree(d, ignore_errors=True)
    return result


def _stacked_step(spec, shape, classes, device):
    """The training step of spec's seeds on random batches, as training takes it (one seed group)."""
    import torch

    from memorization.engine.models import Arch
    from memorization.engine.sgd import initial_state, train_step

    seeds = list(spec.seeds)
    arch = Arch.from_spec(spec, shape, classes)
    params, buffers, velocity = initial_state(arch, seeds, device)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(len(seeds), spec.batch_size, *shape, generator=gen).to(device)
    y = torch.randint(classes, (len(seeds), spec.batch_size), generator=gen).to(device)
    groups = [slice(0, len(seeds))]

    def step():
        train_step(arch, params, buffers, velocity, x, y, lr=0.01, momentum=0.9, groups=groups, loss=spec.loss)

    return step, params


def _graphed(step):
    """`step` captured once into a CUDA graph: its replay launches every kernel of the step at once (the
    parameters are updated in place, so each replay is the next step)."""
    import torch

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # warm-up outside the capture (cuBLAS workspaces, allocator)
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def mlp_step(out, left, args):
    import torch

    from memorization import config as S

    width = 256 if args.quick else 4096
    peak = out.get("matmul_peak", {}).get("fp32_tflops")
    weights = 784 * width + width * width + width * 10
    result = {"width": width}
    for seeds in (1, 3) if args.quick else (1, 3, 10, 30):
        spec = S.resolve({"dataset": "mnist", "width": width}, seeds=range(seeds))
        step, params = _stacked_step(spec, (1, 28, 28), 10, args.device)
        row = {}
        kinds = {"eager": step}
        try:
            if args.device == "cuda":
                kinds["graph"] = _graphed(step)
        except Exception as err:  # the eager numbers still count
            row["graph_error"] = f"{type(err).__name__}: {err}"[:400]
        for kind, fn in kinds.items():
            seconds = _time(fn, 50, args.device)
            tflops = 6 * 32 * weights * seeds / seconds / 1e12  # forward 2·B·W, backward twice that
            row[kind] = {"ms": round(seconds * 1e3, 3), "tflops": round(tflops, 2)}
            if peak:
                row[kind]["of_peak"] = round(tflops / peak, 3)
        result[f"{seeds}_seeds"] = row
        if "graph" in kinds:  # the graph computes what the eager step computes: same start, 8 steps each
            a, pa = _stacked_step(spec, (1, 28, 28), 10, args.device)
            b, pb = _stacked_step(spec, (1, 28, 28), 10, args.device)
            replay = _graphed(b)  # 3 warm-up steps (the capture itself computes nothing)
            for _ in range(3):
                a()
            for _ in range(5):
                a()
                replay()
            torch.cuda.synchronize()
            row["graph_max_abs_diff"] = max(float((pa[k] - pb[k]).abs().max()) for k in pa)
            del a, pa, b, pb, replay
        del step, params, kinds
        if args.device == "cuda":
            torch.cuda.empty_cache()
    return result


def plan(out, left, args):
    config = ROOT / ("tests/slurm/tiny.yaml" if args.quick else "configs/paper.yaml")
    cache = Path(args.out).with_name("gpu-calibration.json")
    code, stdout, stderr = _run(
        [sys.executable, "-m", "memorization", "plan", config, "--devices", "2", "--device", args.device]
        + ["--cache", cache],
        min(left, 180),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "workflow"), os.environ.get("PYTHONPATH", "")])},
    )
    return {"returncode": code, "config": str(config.relative_to(ROOT)), "text": stdout, "stderr": stderr[-1500:]}


def cnn_step(out, left, args):
    from memorization import config as S

    batch = 16 if args.quick else 128
    spec = S.resolve({"dataset": "cifar10", "arch": "cnn", "batch_size": batch}, seeds=[0, 1, 2])
    step, _ = _stacked_step(spec, (3, 32, 32), 10, args.device)
    return {"batch": batch, "ms_per_step_3_seeds": round(_time(step, 3 if args.quick else 20, args.device) * 1e3, 2)}


def lass(out, left, args):
    import torch

    from memorization import config as S
    from memorization.engine.lass import lass as search
    from memorization.engine.models import Arch, forward, init_params

    width, points, iterations = (256, 100, 10) if args.quick else (4096, 1000, 100)
    arch = Arch.from_spec(S.resolve({"dataset": "mnist", "width": width}), (1, 28, 28), 10)
    params = {k: v.to(args.device) for k, v in init_params(arch, [0])[0].items()}
    x = torch.rand(points, 1, 28, 28, device=args.device)
    seconds = _time(
        lambda: search(
            lambda t: forward(arch, params, {}, t, train=False)[0][0],
            x,
            alpha=0.25 / 255,
            beta=0.2 / 255,
            r=0.3 / 255,
            max_iter=iterations,
        ),
        1,
        args.device,
    )
    return {"width": width, "iterations": iterations, "points_per_second": round(points / seconds, 1)}


def replay(out, left, args):
    import torch

    from memorization import config as S
    from memorization.measures.sensitivity import loss_sensitivity

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1000, 1, 14, 14, generator=gen).to(args.device)
    y = torch.randint(10, (1000,), generator=gen).to(args.device)
    T, window = (100, 50) if args.quick else (1000, 500)
    result = {"window": window}
    budget = min(left / 3, 10 if args.quick else 60)
    spent = 0.0
    while True:
        spec = S.resolve(
            {"dataset": "mnist14", "train_size": 1000, "width": 32, "lr": 0.05, "steps": T}
            | {"sampling": "replacement", "loss": "smoothed_log"}
        )
        spec = spec.replace(seeds=[0])
        t0 = time.perf_counter()
        loss_sensitivity(spec, x, y, 10, T, window=window, stride=2)
        _sync(args.device)
        seconds = time.perf_counter() - t0
        spent += seconds
        result[f"T={T}"] = round(seconds, 2)
        if spent + 2.5 * seconds > budget or T >= 100_000:
            break
        T *= 2
    result["ms_per_replayed_step"] = round(seconds / T * 1e3, 3)
    result["extrapolated_T=100000_seconds"] = round(seconds * 100_000 / T)
    return result


def fig1(out, left, args):
    seeds, width = ("4", "64") if args.quick else ("100", "4096")
    code, stdout, stderr = _run(
        [sys.executable, ROOT / "benchmarks/fig1_engine_vs_dataloader.py", "--seeds", seeds, "--width", width]
        + ["--device", args.device, "--no-profile"],
        min(left, 150),
    )
    return {
        "returncode": code,
        "width": int(width),
        "output": stdout.strip().splitlines()[-3:],
        "stderr": stderr[-800:],
    }


SECTIONS = {
    "tests": tests,
    "matmul_peak": matmul_peak,
    "workflow": workflow,
    "mlp_step": mlp_step,
    "plan": plan,
    "cnn_step": cnn_step,
    "lass": lass,
    "replay": replay,
    "fig1": fig1,
}


# ----------------------------------------------------------------------------- the docs


def render(run: dict, docs: str | None, readme: str | None) -> None:
    """A finished run's JSON as the GPU section of docs/performance.md and the README's GPU plan."""
    from memorization.pipeline.readme import GPU, GPU_PLAN, into_readme

    text = report(run)
    print(text)
    if docs:
        into_readme(docs, GPU, text)
    if readme and run.get("plan", {}).get("returncode") == 0:
        into_readme(
            readme,
            GPU_PLAN,
            f"On one {run['device']} ({run['date']}, `benchmarks/gpu.py`): `memorization plan "
            f"{run['plan']['config']} --devices 2`:\n\n```\n{run['plan']['text']}```\n",
        )


def report(run: dict) -> str:
    lines = [
        f"Measured by `benchmarks/gpu.py` on one **{run['device']}** on {run['date']} (torch {run['torch']}, "
        f"CUDA {run['cuda']}); `python benchmarks/gpu.py --render results/gpu.json --docs docs/performance.md` "
        "wrote this section.",
        "",
    ]
    peak = run.get("matmul_peak", {})
    if "fp32_tflops" in peak:
        lines += [
            f"- Matmul peak ({peak['n']}^2): **{peak['fp32_tflops']} TFLOP/s** in IEEE float32, "
            f"{peak['tf32_tflops']} TFLOP/s in TF32.",
        ]
    tests_ = run.get("tests", {})
    if "summary" in tests_:
        lines += [f"- CUDA tests (`tests/test_cuda.py`): {' '.join(tests_['summary'])}."]
    lines += _workflow_lines(run.get("workflow", {}))
    lines += _mlp_lines(run.get("mlp_step", {}))
    cnn = run.get("cnn_step", {})
    if "ms_per_step_3_seeds" in cnn:
        lines += [f"- Paper CNN step (CIFAR-10, batch {cnn['batch']}, 3 seeds): {cnn['ms_per_step_3_seeds']} ms."]
    lass_ = run.get("lass", {})
    if "points_per_second" in lass_:
        lines += [
            f"- LASS on the paper MLP (width {lass_['width']}, {lass_['iterations']} iterations): "
            f"{lass_['points_per_second']} points/s."
        ]
    rep = run.get("replay", {})
    if "ms_per_replayed_step" in rep:
        timings = ", ".join(f"{k} {v} s" for k, v in rep.items() if k.startswith("T="))
        lines += [
            f"- Loss-sensitivity replay, 196-32-32-10 on 1,000 examples, window {rep['window']} at stride 2: "
            f"{timings}; "
            f"{rep['ms_per_replayed_step']} ms per replayed step, so T = 100,000 in about "
            f"{rep['extrapolated_T=100000_seconds']} s."
        ]
    plan_ = run.get("plan", {})
    if plan_.get("returncode") == 0:
        total = [line for line in plan_["text"].splitlines() if line.startswith("total")]
        lines += [
            f"- The cost plan of `{plan_['config']}` calibrated on this card (the README has it whole): {total[-1]}."
        ]
    f1 = run.get("fig1", {})
    if f1.get("returncode") == 0:
        lines += [f"- Fig. 1 workload at width {f1['width']} (engine vs the one-seed DataLoader loop):", ""]
        lines += [f"      {line.strip()}" for line in f1["output"]]

    def failed_(v):
        return (
            "error" in v or v.get("returncode") or any(isinstance(r, dict) and r.get("returncode") for r in v.values())
        )

    failed = [k for k, v in run.items() if isinstance(v, dict) and failed_(v)]
    if failed:
        lines += ["", f"Sections that failed in this run: {', '.join(failed)} (the JSON has their output)."]
    return "\n".join(lines) + "\n"


def _workflow_lines(wf: dict) -> list[str]:
    if "gpu_vs_cpu" not in wf:
        return []
    lines = [
        f"- `tests/slurm/tiny.yaml` end to end (every rule): CPU {wf['cpu']['seconds']} s, GPU "
        f"{wf['gpu']['seconds']} s ({wf['gpu']['jobs_on_gpu']} jobs leased the GPU; with `--resources gpu=2` "
        f"on the one card, {wf['gpu']['jobs_that_waited_for_a_lease']} waited for the lease), GPU with TF32 "
        f"{wf['gpu_tf32']['seconds']} s. Largest absolute difference from the CPU's tables, in which float "
        "column (of that column's largest magnitude):",
        "",
        "  | table | rows | float32 on the GPU | TF32 training on the GPU |",
        "  |---|---:|---|---|",
    ]

    def cell(entry):
        if "mismatch" in entry:
            return f"shape {entry['mismatch']}"
        others = f"; {', '.join(entry['other_columns_differ'])} differ" if entry["other_columns_differ"] else ""
        if not entry["max_abs_diff"]:
            return f"equal{others}"
        return f"{entry['max_abs_diff']:.2g} in {entry['column']} (of {entry['column_max_abs']:.3g}){others}"

    for table, d in wf["gpu_vs_cpu"].items():
        t = wf["gpu_tf32_vs_cpu"].get(table, {})
        lines.append(f"  | {table} | {d.get('rows', '')} | {cell(d)} | {cell(t) if t else ''} |")
    return lines


def _mlp_lines(mlp: dict) -> list[str]:
    rows = {k: v for k, v in mlp.items() if k.endswith("_seeds")}
    if not rows:
        return []
    lines = [
        f"- Paper MLP step (784-{mlp['width']}-{mlp['width']}-10, batch 32), stacked seeds, eager and replayed "
        "from a CUDA graph:",
        "",
        "  | seeds | eager ms | eager TFLOP/s (of peak) | graph ms | graph TFLOP/s (of peak) |",
        "  |---:|---:|---:|---:|---:|",
    ]

    def cells(r):
        if not r:
            return "– | –"
        return f"{r['ms']} | {r['tflops']}" + (f" ({r['of_peak']:.0%})" if "of_peak" in r else "")

    for name, row in rows.items():
        lines.append(f"  | {name.split('_')[0]} | {cells(row.get('eager'))} | {cells(row.get('graph'))} |")
    failures = [
        f"{name.split('_')[0]} seeds ({row['graph_error']})" for name, row in rows.items() if "graph_error" in row
    ]
    if failures:
        lines += ["", f"  The CUDA graph could not be captured at {'; '.join(failures)}."]
    diffs = [row["graph_max_abs_diff"] for row in rows.values() if "graph_max_abs_diff" in row]
    if diffs:
        lines += [
            "",
            f"  The graph's parameters after 8 steps differ from the eager step's by at most {max(diffs):.1g}.",
        ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
