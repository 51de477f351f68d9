"""The cost plan: the device time of every job of a config, predicted before anything runs.

    memorization plan CONFIG [--devices N] [--device cpu|cuda] [--compare results/]

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
import os
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from .. import catalog
from ..engine.memory import data_shape, run_disk_bytes
from ..results.rundir import end_path

if TYPE_CHECKING:
    from ..config import Config, RunSpec

JOB_START = {"torch": 3.0, "light": 1.5}  # seconds to start a job process and import its libraries (measured)
CALIBRATION_STEPS = 200
CALIBRATION_VERSION = 9  # bump when `measure` measures something new: older cache entries are measured again


@dataclass(frozen=True)
class Job:
    experiment: str
    kind: str  # train | metric:<table> | table | figure
    run: str
    seconds: float
    bounded: bool = False  # an upper bound (a run that may stop at fit, a search that may stop early)


# ----------------------------------------------------------------------------- shapes and calibration


def shape_key(spec: RunSpec) -> str:
    """What the speed of a run's steps depends on."""
    shape, classes, _, _ = data_shape(spec)
    keys = ("arch", "width", "depth", "cnn_channels", "cnn_dense", "crop", "batch_size", "loss", "regularizer")
    parts = {k: spec.as_dict()[k] for k in keys} | {"shape": shape, "classes": classes, "seeds": len(spec.seeds)}
    if spec.regularizer == "dropout_adversarial":
        parts["adversarial_max_iter"] = spec.adversarial_max_iter
    return json.dumps(parts, sort_keys=True)


def measure(spec: RunSpec, device: str, steps: int = CALIBRATION_STEPS, budget: float = 3.0) -> dict[str, float]:
    """Seconds per training step, per evaluated example, per LASS iteration and point, per replayed step and
    per backward output step, for the shape of `spec`, on synthetic data: each timed over up to `steps` calls
    or about `budget` seconds (a paper-sized CNN step takes seconds on a CPU). Seeds are stacked in the
    groups training uses (memory.seed_groups); one group is timed and counted once per group."""
    import torch

    from ..engine.architecture import params_per_model
    from ..engine.lass import lass
    from ..engine.memory import GROUP_PARAMS, seed_groups
    from ..engine.models import Arch, forward
    from ..engine.regularizers import Regularizer
    from ..engine.sgd import evaluate, initial_state, train_step
    from ..measures.sensitivity import sensitivity_norms

    shape, classes, _, _ = data_shape(spec)
    arch = Arch.from_spec(spec, shape, classes)
    per_seed = params_per_model(arch)
    groups = seed_groups(len(spec.seeds), per_seed, GROUP_PARAMS["cuda" if device.startswith("cuda") else "cpu"])
    seeds = list(spec.seeds)[groups[0]]
    S, B = len(seeds), spec.batch_size
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

    presented = (torch.zeros(y.shape, dtype=torch.bool, device=device), torch.zeros(y.shape, device=device))

    def step():  # as training takes it, recording the presentations
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
            loss=spec.loss,
            reg=reg,
            seeds=seeds,
            presented=presented,
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
    if per_seed * len(spec.seeds) <= 1 << 22 and not reg.adversarial:  # the replay's nets are small
        n = min(data_shape(spec)[2], 256)
        replay_spec = spec.replace(steps=20, epochs=None, sampling="replacement", train_size=n)
        xt, yt = torch.rand(n, *shape, generator=gen).to(device), torch.randint(classes, (n,), generator=gen)
        # a sweep per pass: each segment stepped again, then every output row carried back through each update
        # The per-output cost is the difference of two timings, so each is the best of three (a busy machine
        # only ever adds time) and the two sets of outputs are far apart (2 against 19).
        few, many = [18, 19], list(range(1, 20))
        times = {}
        for outputs in (few, many):
            sweep = partial(sensitivity_norms, replay_spec, xt, yt.to(device), classes, outputs, chunk=256, segment=20)
            times[len(outputs)] = min(timed(sweep, 2) for _ in range(3)) / 20
        # one row per output step serves every seed (sensitivity.input_jacobian)
        per_output = max(0.0, (times[len(many)] - times[len(few)]) / (len(many) - len(few)))
        out["backward_output_step"] = per_output  # per output step (all seeds) and replayed step
        # per pass and step, beyond the step that stores the states
        out["backward_pass_step"] = max(0.0, times[len(few)] - len(few) * per_output - out["step"])
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


@dataclass(frozen=True)
class RunShape:
    """What a run's job costs follow from, known before it runs: its planned timeline (a run that stops at fit
    counted to its cap) and its data set's sizes (catalog)."""

    timeline: object  # engine.timeline.Timeline
    classes: int
    n_train: int
    n_val: int


def run_shape(spec: RunSpec) -> RunShape:
    from ..engine.timeline import Timeline

    _, classes, n_train, n_val = data_shape(spec)
    return RunShape(Timeline.from_spec(spec, n_train), classes, n_train, n_val)


def training_seconds(spec: RunSpec, t: dict) -> float:
    shape = run_shape(spec)
    evaluated = len(shape.timeline.eval_steps) * (shape.n_train + shape.n_val) * t["eval_example"]
    return shape.timeline.total_steps * t["step"] + evaluated + JOB_START["torch"]


def metric_seconds(table: str, spec: RunSpec, settings: dict, t: dict) -> float:
    """The job start, and the table's cost model (catalog.Table.cost) where it has one: without one the job
    only reads the run's files, and its start dominates."""
    cost = catalog.table(table).cost
    computed = catalog.implementation(cost)(spec, settings, t, run_shape(spec)) if cost is not None else 0.0
    return JOB_START["torch"] + computed


def jobs(config: Config, timings: dict[str, dict]) -> list[Job]:
    """Every training and metric job of a config (each run once, under the first experiment that has it),
    and the small local jobs (data sets, tables, figures), with predicted seconds."""
    out, seen = [], set()
    for name, runs in config.experiments.items():
        tables = set(config.tables_of(name))
        for spec in runs:
            rid, t = spec.run_id, timings[shape_key(spec)]
            if rid not in seen:  # a run shared by experiments trains once
                seen.add(rid)
                out.append(Job(name, "train", rid, training_seconds(spec, t), bounded=spec.stop_when_fit))
            for table in sorted(tables):
                if catalog.table(table).stage == "metric" and (rid, table) not in seen:  # and each metric once
                    seen.add((rid, table))
                    seconds = metric_seconds(table, spec, config.metric_settings(table, spec.dataset), t)
                    out.append(Job(name, f"metric:{table}", rid, seconds, bounded=table == "csr" or spec.stop_when_fit))
        out += [Job(name, "table", table, JOB_START["light"]) for table in tables]
    out += [Job("", "figure", fig, JOB_START["light"]) for fig in config.figures]
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


# ----------------------------------------------------------------------------- disk


@dataclass(frozen=True)
class DiskPlan:
    """What a config's runs keep on disk (engine.memory.run_disk_bytes): all of them, those not finished yet,
    and the space free where results/ lies."""

    total: int
    to_write: int
    free: int

    def report(self) -> str:
        return (
            f"disk: the runs keep {_gb(self.total)} (checkpoints, evaluations, presentations); {_gb(self.to_write)} "
            f"of it not written yet, {_gb(self.free)} free\n"
        )

    def refusal(self) -> str | None:
        """Why the config cannot run here, or None: the runs still to train would fill the disk."""
        if self.to_write <= self.free:
            return None
        return (
            f"the runs still to train would write {_gb(self.to_write)} of checkpoints, evaluations and presentations, "
            f"and {_gb(self.free)} is free: free some space, keep fewer checkpoints (an experiment's `checkpoints:`; "
            "by default a run keeps only those its tables read), or point results/ at a larger disk"
        )


def disk_plan(config: Config, results: Path) -> DiskPlan:
    total = to_write = 0
    for rid, spec in config.runs.items():
        size = run_disk_bytes(spec)
        total += size
        if not end_path(results / "runs" / rid).exists():
            to_write += size
    where = next(p for p in (results, *results.resolve().parents) if p.exists())
    return DiskPlan(total, to_write, shutil.disk_usage(where).free)


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"
