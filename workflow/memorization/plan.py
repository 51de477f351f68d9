"""The cost plan: the device time of every job of a config, predicted before anything runs.

    python -m memorization.plan CONFIG [--devices N] [--device cpu|cuda] [--compare results/]

How: each distinct model shape (architecture, input, classes, batch, seeds stacked, regulariser) is timed for
a short while on the current device (a few hundred training steps, evaluation batches, LASS iterations, a
short differentiable replay), and the timings are cached per device (`--cache`). Job costs then follow from
the specs: training = steps x step time + evaluations x examples x evaluation time; runs that stop at 100%
training accuracy are counted to their cap (an upper bound, marked); loss sensitivity = per checkpoint T, T
replayed steps plus T x outputs backward steps; CSR = checkpoints x seeds x points x iterations (an upper
bound: points whose prediction flips stop early); every job also pays the start of its process. Wall time on
N devices: the jobs packed longest first onto N devices (training and metric jobs on devices; the small
local jobs on the side).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from . import registry
from . import spec as specs

JOB_START = {"torch": 3.0, "light": 1.5}  # seconds to start a job process and import its libraries (measured)
CALIBRATION_STEPS = 200
CALIBRATION_VERSION = 4  # bump when `measure` measures something new: older cache entries are measured again


@dataclass(frozen=True)
class Job:
    experiment: str
    kind: str  # train | metric:<table> | table | figure
    run: str
    seconds: float
    bounded: bool = False  # an upper bound (a run that may stop at fit, a search that may stop early)


# ----------------------------------------------------------------------------- shapes and calibration


def data_shape(spec: dict) -> tuple[tuple[int, int, int], int, int, int]:
    """(input shape, classes, training examples, validation examples) of a run, from the registry alone."""
    d = registry.DATASETS[spec["dataset"]]
    n_train = spec["train_size"] or d.n_train
    identity = spec["label_noise"] == "identity"
    return d.shape, (n_train if identity else d.n_classes), n_train, (0 if identity else d.n_val)


def shape_key(spec: dict) -> str:
    """What the speed of a run's steps depends on."""
    shape, classes, _, _ = data_shape(spec)
    keys = ("arch", "width", "depth", "cnn_channels", "cnn_dense", "crop", "batch_size", "loss", "regularizer")
    parts = {k: spec[k] for k in keys} | {"shape": shape, "classes": classes, "seeds": len(spec["seeds"])}
    if spec["regularizer"] == "dropout_adversarial":
        parts["adversarial_max_iter"] = spec["adversarial_max_iter"]
    return json.dumps(parts, sort_keys=True)


def measure(spec: dict, device: str, steps: int = CALIBRATION_STEPS, budget: float = 3.0) -> dict[str, float]:
    """Seconds per training step, per evaluated example, per LASS iteration and point, per replayed step and
    per backward output step, for the shape of `spec`, on synthetic data: each timed over up to `steps` calls
    or about `budget` seconds (a paper-sized CNN step takes seconds on a CPU). Seeds are stacked in the
    groups training uses (train.seed_groups); one group is timed and counted once per group."""
    import torch

    from .lass import lass
    from .models import Arch, forward, init_params
    from .regularizers import Regularizer
    from .sensitivity import replay_losses, sensitivity_norms
    from .train import GROUP_PARAMS, evaluate, initial_state, seed_groups, train_step

    shape, classes, _, _ = data_shape(spec)
    arch = Arch.from_spec(spec, shape, classes)
    per_seed = sum(v[0].numel() for v in init_params(arch, [0])[0].values())
    groups = seed_groups(len(spec["seeds"]), per_seed, GROUP_PARAMS["cuda" if device.startswith("cuda") else "cpu"])
    seeds = list(spec["seeds"])[groups[0]]
    S, B = len(seeds), spec["batch_size"]
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(S, B, *shape, generator=gen).to(device)
    y = torch.randint(classes, (S, B), generator=gen).to(device)
    params, buffers, velocity = initial_state(arch, seeds, device)
    reg = Regularizer.from_spec(spec)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def timed(fn, repeats: int) -> float:
        """Seconds per call: up to `repeats` calls or about `budget` seconds after a warm-up call (allocator,
        kernels); a warm-up that takes longer than the budget is itself the measurement (a paper-sized CNN
        step with adversarial training takes a minute on a CPU)."""
        sync()
        start = time.perf_counter()
        fn()
        sync()
        first = time.perf_counter() - start
        if first > budget:
            return first
        start, done = time.perf_counter(), 0
        while done < repeats and (done < 2 or time.perf_counter() - start < budget):
            fn()
            done += 1
        sync()
        return (time.perf_counter() - start) / done

    def step():
        train_step(
            arch,
            params,
            buffers,
            velocity,
            x,
            y,
            lr=1e-3,
            momentum=0.9,
            groups=[slice(0, S)],
            loss=spec["loss"],
            reg=reg,
            seeds=seeds,
        )

    n_eval = 2048 if device.startswith("cuda") else 256  # the evaluation batch (2048) on a GPU; fewer on a CPU
    xe, ye = torch.rand(n_eval, *shape, generator=gen).to(device), torch.randint(classes, (n_eval,), generator=gen)
    one, one_b = {k: v[:1] for k, v in params.items()}, {k: v[:1] for k, v in buffers.items()}
    points, iterations = min(n_eval, 512), 3

    def search():
        lass(
            lambda t: forward(arch, one, one_b, t, train=False)[0][0],
            xe[:512],
            alpha=1e-9,
            beta=0.0,
            r=1e-9,
            max_iter=5,
        )

    out = {
        "step": timed(step, steps) * len(groups),
        "eval_example": timed(lambda: evaluate(arch, params, buffers, xe, ye.to(device)), 5) * len(groups) / n_eval,
        "lass_point_iteration": timed(search, 3) / (iterations * points),
    }
    if per_seed * len(spec["seeds"]) <= 1 << 22 and not reg.adversarial:  # the replay's nets are small
        n = min(data_shape(spec)[2], 256)
        replay_spec = {**spec, "steps": 20, "epochs": None, "sampling": "replacement", "train_size": n}
        xt, yt = torch.rand(n, *shape, generator=gen).to(device), torch.randint(classes, (n,), generator=gen)
        # the batched backward of the outputs: a cost per pass and per output, from passes of 2 and 12 steps
        few, many = [18, 19], list(range(8, 20))
        replayed = timed(lambda: replay_losses(replay_spec, xt, yt.to(device), classes, many), 2)
        times = {}
        for outputs in (few, many):
            batches, L = replay_losses(replay_spec, xt, yt.to(device), classes, outputs)
            times[len(outputs)] = timed(lambda b=batches, L=L: sensitivity_norms(b, L, n, chunk=256), 2) / 20
        # one backward row per output step serves every seed (sensitivity.input_jacobian)
        per_output = max(0.0, (times[len(many)] - times[len(few)]) / (len(many) - len(few)))
        out["replay_step"] = replayed / 20
        out["backward_output_step"] = per_output  # per output step (all seeds) and replayed step
        out["backward_pass_step"] = max(0.0, times[len(few)] - len(few) * per_output)  # per pass and step
    return out


def default_cache(device: str) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "memorization"
    return root / f"calibration-{device_name(device)}.json"


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device)).replace(" ", "_")
    import platform

    return f"cpu-{platform.machine()}-{os.cpu_count()}cores"


def calibrations(runs: list[dict], device: str, cache: Path, measure_fn=measure) -> dict[str, dict]:
    """Timings per shape key, measured once per device and kept in `cache` (a JSON file; entries of an older
    CALIBRATION_VERSION are measured again)."""
    known = json.loads(cache.read_text()) if cache.exists() else {}
    timings = {}
    for spec in runs:
        key = shape_key(spec)
        stored = f"v{CALIBRATION_VERSION} {key}"
        if stored not in known:
            known[stored] = measure_fn(spec, device)
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(known, indent=1, sort_keys=True))
        timings[key] = known[stored]
    return timings


# ----------------------------------------------------------------------------- job costs


def _steps(spec: dict) -> tuple[int, int, list[int], list[int]]:
    """(total steps, steps per epoch, evaluation steps, checkpoint steps) as planned (the cap for a run that
    stops at fit)."""
    from .train import Plan

    plan = Plan.from_spec(spec, data_shape(spec)[2])
    return plan.total_steps, plan.steps_per_epoch, list(plan.eval_steps), list(plan.checkpoint_steps)


def training_seconds(spec: dict, t: dict) -> float:
    total, _, evals, _ = _steps(spec)
    _, _, n_train, n_val = data_shape(spec)
    return total * t["step"] + len(evals) * (n_train + n_val) * t["eval_example"] + JOB_START["torch"]


def metric_seconds(family: str, spec: dict, settings: dict, t: dict) -> float:
    from .sensitivity import window_steps

    _, _, evals, checkpoints = _steps(spec)
    S = len(spec["seeds"])
    _, classes, n_train, n_val = data_shape(spec)
    seconds = JOB_START["torch"]
    if family in ("sensitivity", "class_sensitivity"):
        at = [c for c in checkpoints if c > 0]
        at = (
            at[-1:]
            if settings["at"] == "last"
            else (at if settings["at"] == "all" else [c for c in at if c in settings["at"]])
        )
        outputs_per_step = 1 if family == "sensitivity" else classes
        for T in at:
            replayed = T if settings["horizon"] is None else min(T, settings["horizon"] + settings["window"])
            outputs = len(window_steps(T, settings["window"], settings["stride"])) * outputs_per_step  # all seeds
            passes = math.ceil(outputs / settings["chunk"])
            seconds += replayed * (
                t.get("replay_step", math.nan)
                + passes * t.get("backward_pass_step", math.nan)
                + outputs * t.get("backward_output_step", math.nan)
            )
    elif family == "csr":
        sizes = {"val": n_val, "train": n_train}
        points = sum(min(settings["points"] or sizes[s], sizes[s]) for s in settings["splits"])
        seconds += len(checkpoints) * S * points * settings["max_iter"] * t["lass_point_iteration"]
    # examples and filters read the run's files: their job start dominates
    return seconds


def jobs(config: dict, timings: dict[str, dict]) -> list[Job]:
    """Every training and metric job of a config (each run once, under the first experiment that has it),
    and the small local jobs (data sets, tables, figures), with predicted seconds."""
    out, seen = [], set()
    for name, runs in specs.expand(config).items():
        exp = config["experiments"][name]
        tables = set(exp.get("tables", ["training"])) | {
            t for f in exp.get("figures", []) for t in registry.figure(f).tables
        }
        for spec in runs:
            rid = specs.run_id(spec)
            t = timings[shape_key(spec)]
            if rid not in seen:  # a run shared by experiments trains once
                seen.add(rid)
                out.append(Job(name, "train", rid, training_seconds(spec, t), bounded=spec["stop_when_fit"]))
            for table in sorted(tables):
                if registry.table(table).stage == "metric" and (rid, table) not in seen:  # and each metric once
                    seen.add((rid, table))
                    settings = specs.metric_settings(config, table, spec["dataset"])
                    out.append(
                        Job(
                            name,
                            f"metric:{table}",
                            rid,
                            metric_seconds(table, spec, settings, t),
                            bounded=table == "csr" or spec["stop_when_fit"],
                        )
                    )
        out += [Job(name, "table", table, JOB_START["light"]) for table in tables]
    for fig in {f for e in config["experiments"].values() for f in e.get("figures", [])}:
        out.append(Job("", "figure", fig, JOB_START["light"]))
    return out


def wall_time(job_list: list[Job], devices: int) -> float:
    """The device jobs packed longest first onto `devices` devices, and the local jobs on one more core."""
    loads = [0.0] * max(1, devices)
    for job in sorted(
        (j for j in job_list if j.kind == "train" or j.kind.startswith("metric")), key=lambda j: -j.seconds
    ):
        loads[loads.index(min(loads))] += job.seconds
    local = sum(j.seconds for j in job_list if j.kind in ("table", "figure"))
    return max(max(loads), local)


def by_kind(job_list: list[Job]) -> dict[tuple[str, str], list[Job]]:
    """The jobs grouped by (experiment, job kind), in that order."""
    groups: dict[tuple[str, str], list[Job]] = defaultdict(list)
    for job in job_list:
        groups[(job.experiment or "(figures)", job.kind)].append(job)
    return dict(sorted(groups.items()))


def _hours(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 600 else f"{seconds / 3600:.1f} h"


def report(job_list: list[Job], devices: int, device: str) -> str:
    lines = [
        f"Cost plan on {device_name(device)} ({devices} device(s) in parallel)",
        "",
        f"{'experiment':<22} {'job kind':<26} {'jobs':>5} {'device time':>12}",
    ]
    for (exp, kind), group in by_kind(job_list).items():
        bound = " <=" if any(j.bounded for j in group) else ""
        seconds = sum(j.seconds for j in group)
        lines.append(f"{exp:<22} {kind:<26} {len(group):>5} {bound:>3}{_hours(seconds):>9}")
    total = sum(j.seconds for j in job_list)
    lines += [
        "",
        f"total device time {_hours(total)}; wall time on {devices} device(s) {_hours(wall_time(job_list, devices))}",
        "<= marks upper bounds: runs that stop at 100% training accuracy counted to their cap, LASS counted "
        "to its iteration cap",
    ]
    return "\n".join(lines) + "\n"


def benchmark_seconds(path: Path) -> float:
    """The wall seconds of a job from its Snakemake `benchmark:` file (column `s` of its one row)."""
    return float(path.read_text().splitlines()[1].split("\t")[0])


def compare(job_list: list[Job], results: Path) -> str:
    """Predicted against measured (Snakemake's benchmark files of an actual run), per experiment and total."""
    measured: dict[tuple[str, str], float] = {}
    for job in job_list:
        if job.kind == "train":
            path = results / "benchmarks" / "train" / f"{job.run}.tsv"
        elif job.kind.startswith("metric:"):
            path = results / "benchmarks" / "metrics" / job.run / f"{job.kind.split(':')[1]}.tsv"
        else:
            continue
        if path.exists():
            measured[(job.experiment, job.kind, job.run)] = benchmark_seconds(path)
    by_exp: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for job in job_list:
        key = (job.experiment, job.kind, job.run)
        if key in measured:
            by_exp[job.experiment][0] += job.seconds
            by_exp[job.experiment][1] += measured[key]
    lines = [f"{'experiment':<22} {'planned':>9} {'measured':>9} {'ratio':>6}"]
    for exp, (planned, got) in sorted(by_exp.items()):
        lines.append(f"{exp:<22} {planned:>8.0f}s {got:>8.0f}s {planned / got:>6.2f}")
    planned, got = sum(v[0] for v in by_exp.values()), sum(v[1] for v in by_exp.values())
    lines.append(f"{'total':<22} {planned:>8.0f}s {got:>8.0f}s {planned / got:>6.2f}")
    return "\n".join(lines) + "\n"


def where_time_went(workdir) -> str:
    """The time of an actual run, from its files: Snakemake's elapsed time (its newest log in
    .snakemake/log/) and the job times of the `benchmark:` files, summed per job kind."""
    workdir = Path(workdir)
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    elapsed = "?"
    for line in logs[-1].read_text().splitlines() if logs else []:
        if line.startswith("Elapsed time"):
            elapsed = line.split(": ", 1)[1].split(".")[0]
    kinds: dict[str, list[float]] = defaultdict(list)
    for path in (workdir / "results" / "benchmarks").glob("**/*.tsv"):
        kind = "train" if path.parent.name == "train" else f"metric:{path.stem}"
        kinds[kind].append(benchmark_seconds(path))
    lines = [
        f"Snakemake's elapsed time: {elapsed}. Job time (from the `benchmark:` files), per job kind:",
        "",
        "| jobs | count | job-seconds |",
        "|---|---|---|",
    ]
    for kind, times in sorted(kinds.items(), key=lambda kv: -sum(kv[1])):
        lines.append(f"| {kind} | {len(times)} | {sum(times):.0f} |")
    lines.append(f"| all of them | {sum(len(t) for t in kinds.values())} | {sum(sum(t) for t in kinds.values()):.0f} |")
    return "\n".join(lines) + "\n"


README_BEGIN = "<!-- plan: generated by `make readme-plan` -->\n"
README_END = "<!-- end of plan -->"
TIME_BEGIN = "<!-- time: generated by `make readme-scorecard` -->\n"
TIME_END = "<!-- end of time -->"


def into_readme(path, block: str, begin: str = README_BEGIN, end: str = README_END) -> None:
    """Replace a generated section of the README."""
    text = Path(path).read_text()
    start, stop = text.index(begin) + len(begin), text.index(end)
    Path(path).write_text(text[:start] + block + text[stop:])


def main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m memorization.plan", description=__doc__.split("\n")[0])
    ap.add_argument("config", nargs="?", help="a config file (as given to snakemake --configfile)")
    ap.add_argument("--time-of", help="instead: where the time of the run in this working directory went")
    ap.add_argument("--devices", type=int, default=1, help="devices (GPUs, or CPU job slots) working in parallel")
    ap.add_argument("--device", default=None, help="calibrate on this device (default: cuda if present, else cpu)")
    ap.add_argument("--cache", help="calibration cache file (default: ~/.cache/memorization/calibration-<device>.json)")
    ap.add_argument("--compare", help="a results/ folder of an actual run: compare with its benchmark files")
    ap.add_argument("--readme", help="also write the plan into this README's generated plan section")
    args = ap.parse_args(argv)
    if args.time_of:
        text = where_time_went(args.time_of)
        if args.readme:
            into_readme(args.readme, text, TIME_BEGIN, TIME_END)
        print(text, end="")
        return
    if not args.config:
        ap.error("give a config file (or --time-of DIR)")
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(1 if device == "cpu" else torch.get_num_threads())  # as the jobs run
    given = specs._read_yaml(Path(args.config))
    config = specs.validate(
        specs.load_config(given, workdir=Path.cwd(), repository=Path(__file__).resolve().parents[2])
    )
    runs = [r for rs in specs.expand(config).values() for r in rs]
    timings = calibrations(runs, device, Path(args.cache) if args.cache else default_cache(device))
    job_list = jobs(config, timings)
    text = report(job_list, args.devices, device)
    print(text, end="")
    if args.readme:
        into_readme(
            args.readme, f"`python -m memorization.plan {args.config} --devices {args.devices}`:\n\n```\n{text}```\n"
        )
    if args.compare:
        print("\n" + compare(job_list, Path(args.compare)), end="")


if __name__ == "__main__":
    main()
