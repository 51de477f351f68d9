"""What a job holds in memory, predicted from the sizes of its work before it runs, and how seeds are grouped
to keep it in cache. Without torch: Snakemake evaluates every job's `mem_mb` from here while it plans.

A job's peak is the process (the interpreter, torch, numpy and pyarrow: a job with nothing to compute peaks
at 594–620 MB on this project's machines, and oneDNN's and the allocator's caches add up to 150 MB more in
the digits default's jobs) plus the tensors its work holds at once:
- training: the data set, the stacked seeds' parameters, momentum and gradients (and a state being written),
  one batch's activations, one evaluation chunk's activations;
- the loss-sensitivity replay (memorization.sensitivity): the states stored at the segments' starts, the
  graph of one segment, what the batched backward pass holds per output row and unrolled step, the
  Jacobian of one pass and the cotangents of a segment's ends.
The replay's segment length balances the first two against the others (`replay_segment`), so its memory
grows as √(T · rows), not as T: measured against benchmarks/replay_memory.py in docs/performance.md.
"""

from __future__ import annotations

import math
import os

from .architecture import Arch, activations_per_example, params_per_model

FLOAT = 4  # bytes: float32, as jobs compute
MB = 1 << 20
PROCESS_MB = 800
EVAL_BATCH = 2048

# Seeds train as one batched computation in groups of at most this many stacked parameters (execution
# settings, not part of a run's identity; measured on 2 cores, docs/design.md, Devices). A training step
# streams each weight a few times over a 32-row batch, so bigger groups pay (100 seeds of width 256 step
# 1.3x faster in one group than in nine); evaluation streams the weights once per 2048-row chunk, and keeps
# them in cache only in groups of about a million parameters.
GROUP_PARAMS = {"cpu": 1 << 24, "cuda": 1 << 28}
EVAL_GROUP_PARAMS = {"cpu": 1 << 20, "cuda": 1 << 28}


def seed_groups(n_seeds: int, params_per_seed: int, budget: int) -> list[slice]:
    """Contiguous, near-equal groups of seeds with at most `budget` stacked parameters each."""
    n_groups = math.ceil(n_seeds / max(1, min(n_seeds, budget // max(1, params_per_seed))))
    bounds = [round(i * n_seeds / n_groups) for i in range(n_groups + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def _largest_group(n_seeds: int, params: int, budget: int) -> int:
    return max(g.stop - g.start for g in seed_groups(n_seeds, params, budget))


def training_bytes(arch: Arch, n_seeds: int, batch: int, n_examples: int, device: str = "cpu") -> int:
    """Peak tensors of a training job (or of any job that loads a run and evaluates it)."""
    params, acts = params_per_model(arch), activations_per_example(arch)
    data = n_examples * math.prod(arch.in_shape) * FLOAT * 3  # the saved arrays, their tensors, a batch's copy
    state = n_seeds * params * FLOAT * 5  # parameters, momentum, gradients, a checkpoint being written
    step = _largest_group(n_seeds, params, GROUP_PARAMS[device]) * batch * acts * FLOAT * 4  # with gradients
    evaluation = _largest_group(n_seeds, params, EVAL_GROUP_PARAMS[device]) * EVAL_BATCH * acts * FLOAT * 2
    return data + state + step + evaluation


def _replay_parts(arch: Arch, n_seeds: int, batch: int) -> tuple[int, int, int, int]:
    """Bytes (per stored state, per unrolled step of one segment's graph, per output row and unrolled step,
    per output row). The last two are fitted to the peaks benchmarks/replay_memory.py measures (the gradients
    of every batch input of a segment, for every row, and about eleven copies of a row's cotangents of the
    parameters and momentum); docs/performance.md lists the model against the measurements."""
    params, acts = params_per_model(arch), activations_per_example(arch)
    state = n_seeds * 2 * params * FLOAT  # parameters and momentum at a segment's start
    graph_step = n_seeds * FLOAT * (3 * params + 10 * batch * acts)  # second-order graph of one step
    row_step = n_seeds * FLOAT * batch * (math.prod(arch.in_shape) + acts // 8)
    return state, graph_step, row_step, 11 * state


# Segments shorter than this cost more in per-segment work than they save in memory (measured: 2-step
# segments replay 25% slower than 32-step ones, for 7% less memory).
MIN_SEGMENT = 8


def replay_segment(arch: Arch, n_seeds: int, batch: int, n_steps: int, rows: int) -> int:
    """Steps per segment that minimise the replay's memory: n/L stored states against L steps of graph and
    of input gradients for every row of a pass; about √n with one row, shorter with the hundreds of rows of
    a pass at the authors' stride."""
    state, graph_step, row_step, _ = _replay_parts(arch, n_seeds, batch)
    best = math.sqrt(max(1, n_steps) * state / (graph_step + rows * row_step))
    return max(1, min(n_steps, max(MIN_SEGMENT, round(best))))


def replay_bytes(
    arch: Arch, n_seeds: int, batch: int, n_train: int, n_steps: int, rows: int, segment: int | None = None
) -> int:
    """Peak tensors of one pass of the replay over n_steps with `rows` outputs (memorization.sensitivity), in
    segments of `segment` steps or of the length `replay_segment` chooses."""
    state, graph_step, row_step, row = _replay_parts(arch, n_seeds, batch)
    segment = segment or replay_segment(arch, n_seeds, batch, n_steps, rows)
    jacobian = rows * n_seeds * n_train * math.prod(arch.in_shape) * FLOAT
    return math.ceil(n_steps / segment) * state + segment * (graph_step + rows * row_step) + rows * row + jacobian


def job_mb(tensor_bytes: int) -> int:
    """The memory to ask for: the process and the tensors, with a quarter more for the allocator's slack."""
    return math.ceil(PROCESS_MB + 1.25 * tensor_bytes / MB)


def machine_mb() -> int:
    """This machine's memory for Snakemake to share out, in MB: its physical memory or the container's limit
    (cgroup v2 `memory.max`), whichever is smaller, less 1 GB for Snakemake itself and the system."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return max(1024, total // MB - 1024)


# ----------------------------------------------------------------------------- metric tables (registry.Table.memory)
# Each: (spec, settings, arch, n_train) -> bytes the table's computation holds beyond loading and evaluating
# the run (`training_bytes`).


def _replay_table_bytes(spec: dict, settings: dict, arch: Arch, n_train: int, terms_per_step: int) -> int:
    """The replay at the run's last checkpoint, the longest (an upper bound for the others)."""
    steps = spec["steps"] if spec["steps"] is not None else spec["epochs"] * math.ceil(n_train / spec["batch_size"])
    replayed = steps if settings["horizon"] is None else min(steps, settings["horizon"] + settings["window"])
    rows = min(settings["chunk"], (settings["window"] // settings["stride"]) * terms_per_step)
    return replay_bytes(arch, len(spec["seeds"]), spec["batch_size"], n_train, replayed, max(1, rows))


def sensitivity_bytes(spec: dict, settings: dict, arch: Arch, n_train: int) -> int:
    return _replay_table_bytes(spec, settings, arch, n_train, 1)


def class_sensitivity_bytes(spec: dict, settings: dict, arch: Arch, n_train: int) -> int:
    return _replay_table_bytes(spec, settings, arch, n_train, arch.n_classes)
