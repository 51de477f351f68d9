"""What a job holds in memory, predicted from the sizes of its work before it runs, and how seeds are grouped
to keep it in cache. Without torch: Snakemake evaluates every job's `mem_mb` from here while it plans.

A job's peak is the process (the interpreter, torch, numpy and pyarrow: a job with nothing to compute peaks
at 594–620 MB on this project's machines, and oneDNN's and the allocator's caches add up to 150 MB more in
the digits default's jobs) plus the tensors its work holds at once:
- training: the data set, the stacked seeds' parameters, momentum and gradients (and a state being written),
  one batch's activations, one evaluation chunk's activations;
- the loss-sensitivity replay (memorization.measures.sensitivity): the states stored at the segments' starts, the
  parameters of the steps of one segment, and per output row of a pass its cotangents, its row of the
  Jacobian and the curvature's tangents of one batch.
The segment length balances the first two (`replay_segment`), so the replay's memory grows as √T, not as T,
and linearly with the rows of a pass: measured against benchmarks/replay_memory.py in docs/performance.md.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from .. import catalog
from .architecture import Arch, activations_per_example, params_per_model

if TYPE_CHECKING:
    from ..config import RunSpec

FLOAT = 4  # bytes: float32, as jobs compute
MB = 1 << 20
PROCESS_MB = 800

# Seeds train as one batched computation in groups of at most this many stacked parameters (execution
# settings, not part of a run's identity; measured on 2 cores, docs/performance.md). On a CPU a group takes
# every step up to the next evaluation, checkpoint or epoch end before the next group starts (train_until in
# memorization.engine.train), so a group sized to stay in cache keeps its weights there from step to step:
# groups of 2^21 parameters (8 MB; 24 seeds of the digits MLP of width 256, 7 of the MNIST one) trained the
# Fig. 1 workload and the default's
# 100-seed MNIST runs fastest of 2^19 to 2^24, 1.2x and 1.03x faster than one group of every seed. A GPU wants
# the biggest products it can get. Evaluation streams the weights once per chunk of EVAL_BATCH rows and is
# fastest on a CPU when a group's weights and a chunk's activations stay in cache together (2^20 parameters and
# 512-row chunks: within 5% of the best of 2^18 to 2^21 and 256 to 2048 rows on both).
GROUP_PARAMS = {"cpu": 1 << 21, "cuda": 1 << 28}
EVAL_GROUP_PARAMS = {"cpu": 1 << 20, "cuda": 1 << 28}
EVAL_BATCH = {"cpu": 512, "cuda": 2048}


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
    evaluation = _largest_group(n_seeds, params, EVAL_GROUP_PARAMS[device]) * EVAL_BATCH[device] * acts * FLOAT * 2
    return data + state + step + evaluation


def data_shape(spec: RunSpec) -> tuple[tuple[int, int, int], int, int, int]:
    """(input shape, classes, training examples, validation examples) of a run, from the catalog alone."""
    d = catalog.DATASETS[spec.dataset]
    n_train = spec.train_size or d.n_train
    identity = spec.label_noise == "identity"
    return d.shape, (n_train if identity else d.n_classes), n_train, (0 if identity else d.n_val)


def loaded_run_bytes(spec: RunSpec) -> tuple[Arch, int, int]:
    """(arch, training examples, bytes of loading, training or evaluating the run) of a run's job."""
    shape, classes, n_train, n_val = data_shape(spec)
    arch = Arch.from_spec(spec, shape, classes)
    return arch, n_train, training_bytes(arch, len(spec.seeds), spec.batch_size, n_train + n_val)


def training_memory_mb(spec: RunSpec) -> int:
    """The memory a run's training job needs, its `mem_mb`."""
    return job_mb(loaded_run_bytes(spec)[2])


def run_disk_bytes(spec: RunSpec) -> int:
    """What a finished run keeps on disk (results/runs/<run>/), predicted from its spec: its checkpoints (the
    stacked seeds' parameters, and momentum where it has any: memorization.engine.train.save_state), its
    evaluations (per seed and training example, whether it is classified as labelled and the probability of
    the label) and its presentations (per epoch, the same two per example). Within a few percent of the files
    of the default's runs (tests/test_memory.py); the tables are small beside them."""
    from ..config.spec import record_counts

    shape, classes, n_train, _ = data_shape(spec)
    params = params_per_model(Arch.from_spec(spec, shape, classes))
    counts = record_counts(spec.as_dict(), n_train)
    seeds, per_example = len(spec.seeds), 1 + FLOAT  # a bool and a float32 per seed and example
    checkpoint = seeds * params * FLOAT * (2 if spec.momentum else 1) + FILE_OVERHEAD
    record = seeds * n_train * per_example + FILE_OVERHEAD
    epochs = math.ceil(counts["steps"] / counts["steps_per_epoch"])
    return counts["checkpoints"] * checkpoint + (counts["evaluations"] + epochs) * record


FILE_OVERHEAD = 2048  # bytes of a checkpoint's or an array file's header, names and small arrays


def metric_memory_mb(table: str, spec: RunSpec, settings: dict) -> int:
    """The memory a metric job needs: the run loaded and evaluated, and the table's memory model
    (catalog.Table.memory) where it has one."""
    arch, n_train, loaded = loaded_run_bytes(spec)
    model = catalog.table(table).memory
    extra = catalog.implementation(model)(spec, settings, arch, n_train) if model is not None else 0
    return job_mb(loaded + extra)


def replay_segment(n_steps: int) -> int:
    """Steps per segment that minimise the replay's memory: n/L stored states (parameters and momentum) against
    the parameters of the L steps of the segment being swept: L = √(2n)."""
    return max(1, min(n_steps, round(math.sqrt(2 * max(1, n_steps)))))


def replay_bytes(
    arch: Arch, n_seeds: int, batch: int, n_train: int, n_steps: int, rows: int, segment: int | None = None
) -> int:
    """Peak tensors of one pass of the replay over n_steps with `rows` outputs (memorization.measures.sensitivity): the
    stored states and one segment's parameters; per row, the cotangents of the parameters and momentum and
    the row of the Jacobian; and the curvature's work on one step's batch, a few tangents of the batch's
    activations per row (memorization.engine.curvature). Measured against benchmarks/replay_memory.py in
    docs/performance.md."""
    params = params_per_model(arch)
    segment = segment or replay_segment(n_steps)
    states = (math.ceil(n_steps / segment) * 2 + segment) * n_seeds * params
    per_row = n_seeds * (2 * params + n_train * math.prod(arch.in_shape)) + 3 * batch * activations_per_example(arch)
    return FLOAT * (states + rows * per_row)


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


def reuse_freed_memory() -> None:
    """Have glibc's malloc keep freed memory for the next tensor instead of handing it back to the kernel.

    Why: a step of 100 stacked seeds makes and frees a dozen tensors of a few MB each. glibc maps such blocks
    afresh (above its mmap threshold) or trims them off the heap's top once freed, so each new one is faulted
    in page by page: 18,000–29,000 page faults and 0.07 s of system time per Fig. 1 workload, at most 3,300 and
    0.03 s with the thresholds raised (benchmarks/fig1_engine_vs_dataloader.py's workload, measured). The peak
    is unchanged; the process keeps its peak until it ends, as the jobs' memory model assumes. Tensors of
    32 MB and more are still mapped (glibc's upper bound for the threshold). A no-op off glibc."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl without mallopt)
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    mallopt(M_MMAP_THRESHOLD, 32 * MB)
    mallopt(M_TRIM_THRESHOLD, 1 << 30)


# ----------------------------------------------------------------------------- metric tables (catalog.Table.memory)
# Each: (spec, settings, arch, n_train) -> bytes the table's computation holds beyond loading and evaluating
# the run (`training_bytes`).


def _replay_table_bytes(spec: RunSpec, settings: dict, arch: Arch, n_train: int, terms_per_step: int) -> int:
    """The replay at the run's last checkpoint, the longest (an upper bound for the others)."""
    steps = spec.steps if spec.steps is not None else spec.epochs * math.ceil(n_train / spec.batch_size)
    replayed = steps if settings["horizon"] is None else min(steps, settings["horizon"] + settings["window"])
    rows = min(settings["chunk"], (settings["window"] // settings["stride"]) * terms_per_step)
    return replay_bytes(arch, len(spec.seeds), spec.batch_size, n_train, replayed, max(1, rows))


def sensitivity_bytes(spec: RunSpec, settings: dict, arch: Arch, n_train: int) -> int:
    return _replay_table_bytes(spec, settings, arch, n_train, 1)


def class_sensitivity_bytes(spec: RunSpec, settings: dict, arch: Arch, n_train: int) -> int:
    return _replay_table_bytes(spec, settings, arch, n_train, arch.n_classes)


def scores_bytes(spec: RunSpec, settings: dict, arch: Arch, n_train: int) -> int:
    """The per-example scores (memorization.measures.scores): VoG's float64 sums of the input gradients and of their
    squares over the checkpoints, (S, N, D) each, one chunk's input gradients with the activations behind
    them, and one chunk of per-example parameter gradients (GraNd) with about as much again of autograd's
    intermediates under vmap."""
    S, D, chunk = len(spec.seeds), math.prod(arch.in_shape), settings["chunk"]
    sums = 2 * S * n_train * D * 8
    input_gradients = S * chunk * (D + activations_per_example(arch)) * FLOAT * 2
    per_example = 2 * chunk * params_per_model(arch) * FLOAT
    return sums + input_gradients + per_example
