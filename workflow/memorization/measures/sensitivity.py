"""Loss sensitivity through SGD (docs/science.md §3.2–3.4). (Its Gini coefficient is in stats.py.)

g_x^t = ‖∂L_t/∂x‖ is the influence of training input x on the loss after t SGD updates. It flows only
through the parameter updates x took part in: L_t is the mini-batch loss of step t with that batch's
inputs detached (the authors' `disconnected_grad`), while x stays connected wherever it entered an
earlier update. We therefore replay the run's SGD steps — the same batches (rebuilt from the stateless
per-(seed, epoch) generators), masks and training step — and take ∂L_t/∂X for every training example at
once with one reverse sweep that carries a cotangent per output back through each update: the SGD step's
exact transpose (`sgd.sgd_step_vjp_`) and the batch loss's Hessian product (`memorization.engine.curvature`), segment
by segment, in memory that grows as √T rather than T (`Trajectory`).

A plain input gradient of each example's own loss is a different quantity (its off-diagonal per-class
cells are zero); it is not offered here.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..engine.curvature import add_loss_hvp_
from ..engine.memory import replay_segment
from ..engine.models import Arch, example_losses, forward
from ..engine.regularizers import Regularizer, layer_noise
from ..engine.sgd import initial_state, load_state, sgd_step_vjp_, train_step
from ..engine.timeline import Timeline, learning_rate

if TYPE_CHECKING:
    from ..config import RunSpec

NORMS = ("l1", "l2", "linf")


def window_steps(checkpoint: int, window: int, stride: int) -> list[int]:
    """Steps t whose L_t is averaged for a checkpoint at step T: T−stride, T−2·stride, … ≥ max(0, T−window).
    The authors: window 500, stride 2 (t = T−500, …, T−2)."""
    return sorted(checkpoint - k * stride for k in range(1, min(window, checkpoint) // stride + 1))


def input_norm(j: torch.Tensor, norm: str, dims: int) -> torch.Tensor:
    """Norm over the input dimensions (the trailing `dims` axes). l1 is the MEAN absolute value, as the
    authors' code (‖·‖₁ / D: a constant factor that changes no comparison and no Gini)."""
    flat = j.flatten(start_dim=j.dim() - dims)
    if norm == "l1":
        return flat.abs().mean(-1)
    if norm == "l2":
        return flat.norm(dim=-1)
    if norm == "linf":
        return flat.abs().amax(-1)
    raise ValueError(f"unknown norm {norm!r}; one of {NORMS}")


def start_state(spec: RunSpec, arch: Arch, run_dir, step: int, device):
    """(params, buffers, velocity, step) from the latest checkpoint at or before `step`, else the
    initialisation (which needs no file: it is a function of the seeds)."""
    ckpts = sorted(Path(run_dir, "checkpoints").glob("step_*.pt")) if run_dir else []
    usable = [p for p in ckpts if int(p.stem.split("_")[1]) <= step]
    if usable:
        state = load_state(usable[-1], device)
        return state["params"], state["buffers"], state["velocity"], int(state["step"])
    return (*initial_state(arch, list(spec.seeds), device), 0)


@dataclass
class Trajectory:
    """A run's SGD trajectory from `begin` to the last output step, held as the state (params, buffers,
    velocity) at the start of each segment, computed once by the training step without a graph. The reverse
    sweep takes the segments from the last: each is stepped again from its stored state, keeping the parameters
    of each of its steps, so the replay holds T/L states and L steps' parameters (L ≈ √(2T),
    `memory.replay_segment`) instead of T. Parameters before `begin` are held constant (the `horizon`)."""

    spec: RunSpec
    arch: Arch
    timeline: Timeline
    reg: Regularizer
    x: torch.Tensor
    y: torch.Tensor
    starts: list[int]  # first step of each segment; segment i covers steps starts[i] .. starts[i+1]-1
    states: list[tuple[dict, dict, dict]]  # (params, buffers, velocity) at each start
    last: int  # the last output step: the last segment ends with its loss, not an update

    @classmethod
    def replay(
        cls,
        spec: RunSpec,
        x: torch.Tensor,
        y: torch.Tensor,
        n_classes: int,
        begin: int,
        last: int,
        *,
        run_dir=None,
        segment: int | None = None,
    ) -> Trajectory:
        """The trajectory from `begin` to `last`, in segments of `segment` steps, or of the length that
        minimises the replay's memory (`memory.replay_segment`)."""
        reg = Regularizer.from_spec(spec)
        if reg.adversarial:
            raise ValueError(
                "loss sensitivity cannot replay adversarial training (the LASS search inside each step "
                "is not differentiable); leave sensitivity tables out of dropout_adversarial runs"
            )
        seeds, device = list(spec.seeds), x.device
        arch = Arch.from_spec(spec, tuple(x.shape[1:]), n_classes)
        timeline = Timeline.from_spec(spec, len(x))
        params, buffers, velocity, loaded = start_state(spec, arch, run_dir, begin, device)
        state = [{k: v.to(x.dtype) for k, v in d.items()} for d in (params, buffers, velocity)]
        begin = max(begin, loaded)
        segment = segment or replay_segment(last + 1 - begin)
        starts = list(range(begin, last + 1, segment))
        states, wanted = [], set(starts)
        for t, epoch, idx in timeline.steps(seeds, loaded, starts[-1] + 1, device):
            if t in wanted:
                states.append(tuple({k: v.clone() for k, v in d.items()} for d in state))
            if t == starts[-1]:
                break
            _train_step_(spec, arch, reg, seeds, state, x[idx], y[idx], epoch, t)
        return cls(spec, arch, timeline, reg, x, y, starts, states, last)

    def segment(self, i: int) -> list[tuple[int, int, torch.Tensor, dict, dict]]:
        """(step, epoch, batch indices (S, B), params, buffers) for every step of segment i, the parameters
        and buffers before that step's update: segment i stepped again from its stored state, no graph."""
        seeds = list(self.spec.seeds)
        state = [{k: v.clone() for k, v in d.items()} for d in self.states[i]]
        stop = self.starts[i + 1] if i + 1 < len(self.starts) else self.last + 1
        steps = []
        for t, epoch, idx in self.timeline.steps(seeds, self.starts[i], stop, self.x.device):
            steps.append((t, epoch, idx, *({k: v.clone() for k, v in d.items()} for d in state[:2])))
            if t + 1 < stop:
                _train_step_(self.spec, self.arch, self.reg, seeds, state, self.x[idx], self.y[idx], epoch, t)
        return steps


def _train_step_(spec: RunSpec, arch: Arch, reg: Regularizer, seeds: list, state, xb, yb, epoch: int, step: int):
    """The run's training step at `step` (sgd.train_step, as training took it), in place on state = [params,
    buffers, velocity]."""
    train_step(
        arch,
        *state,
        xb,
        yb,
        lr=learning_rate(spec, epoch),
        momentum=spec.momentum,
        groups=[slice(0, len(seeds))],
        loss=spec.loss,
        reg=reg,
        seeds=seeds,
        step=step,
    )


def loss_terms(by: str, loss: str, n_classes: int, out_steps):
    """output(step, logits, labels) for `Trajectory.unroll`: the loss of an output step's batch under θ_t, by
    "batch" (K = 1, L_t itself), by "class" (K = n_classes, the class-i terms of the batch mean, which sum to
    L_t) or by "example" (K = B, each batch example's own loss); None at other steps."""
    wanted = set(out_steps)

    def output(step, logits, labels):
        if step not in wanted:
            return None
        losses = example_losses(logits, labels, loss)
        if by == "example":
            return losses
        if by == "class":
            per_class = torch.zeros(losses.shape[0], n_classes, dtype=losses.dtype, device=losses.device)
            return per_class.scatter_add(1, labels, losses / labels.shape[1])
        return losses.mean(1, keepdim=True)

    return output


def _begin(out_steps, horizon: int | None) -> int:
    """The first replayed update: 0 (the authors' code: every update since the start counts), or `horizon`
    steps before the first output step."""
    return 0 if horizon is None else max(0, min(out_steps) - horizon)


def input_jacobian(
    spec: RunSpec,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    n_classes: int,
    out_steps: list[int],
    *,
    run_dir=None,
    by: str = "batch",
    direct: bool = False,
    horizon: int | None = None,
    chunk: int = 256,
    segment: int | None = None,
):
    """Yield (row indices, J) for chunks of the M·K outputs (m, k) of the replayed loss terms (M output
    steps, K terms each, `loss_terms`), where J[c, s, n] = ∂L_{m,s,k}/∂x_n for seed s's copy of training
    input n: (chunk, S, N, ...).

    One reverse sweep per chunk, step by step from the last output (`Trajectory`), carrying a cotangent of
    the parameters and momentum for every row: a row starts at its own output step with ∂L_t/∂θ_t, and each
    update u before it takes the cotangents through the transpose of the SGD step (sgd.sgd_step_vjp_), whose
    curvature term H·a of the step's batch loss (memorization.engine.curvature) also gives that batch's inputs their
    gradient. Rows are the outputs, ordered by step, so the rows an update acts on are a suffix of the chunk.

    One row serves every seed: the seeds are independent copies of the run stacked along axis 1 (their own
    parameters, batches, BatchNorm statistics and noise), so the gradient of Σ_s L_{m,s,k} with respect to
    seed s's inputs is that of L_{m,s,k} alone. S seeds then cost one row per output instead of S.

    direct: keep the direct path x → L_t of the output step's batch (the authors' per-class code); by
    default it is cut (their loss-sensitivity code: the batch inputs are detached there). horizon: replay
    only this many steps before the first output step (None: from initialisation, as the authors' code)."""
    out_steps = sorted(out_steps)
    K = _terms_per_step(spec, Timeline.from_spec(spec, len(x_train)), by, n_classes, out_steps)
    traj = Trajectory.replay(
        spec, x_train, y_train, n_classes, _begin(out_steps, horizon), out_steps[-1], run_dir=run_dir, segment=segment
    )
    S, N, shape, dev = len(spec.seeds), len(x_train), tuple(x_train.shape[1:]), x_train.device
    output = loss_terms(by, spec.loss, n_classes, out_steps)
    for first in range(0, len(out_steps) * K, chunk):
        rows = list(range(first, min(first + chunk, len(out_steps) * K)))
        row_step = [out_steps[r // K] for r in rows]  # non-decreasing
        jac = torch.zeros((len(rows), S * N, *shape), dtype=x_train.dtype, device=dev)
        like = traj.states[0][0]
        lam_w, lam_v = ({k: v.new_zeros((S, len(rows), *v.shape[1:])) for k, v in like.items()} for _ in "wv")
        for i in reversed(range(len(traj.starts))):
            if traj.starts[i] > row_step[-1]:
                continue
            for u, epoch, idx, params, buffers in reversed(traj.segment(i)):
                if u > row_step[-1]:
                    continue
                noise = layer_noise(traj.reg, list(spec.seeds), u, dev)
                xb, yb = x_train[idx], y_train[idx]
                active = bisect.bisect_right(row_step, u)  # rows from here on take their loss after update u
                if active < len(rows):
                    w, v = ({k: t[:, active:] for k, t in lam.items()} for lam in (lam_w, lam_v))
                    curvature = partial(_curvature_, w, jac, active, traj, params, buffers, idx, xb, yb, noise)
                    sgd_step_vjp_(
                        w,
                        v,
                        curvature,
                        lr=learning_rate(spec, epoch),
                        momentum=spec.momentum,
                        weight_decay=traj.reg.weight_decay,
                    )
                lo, hi = bisect.bisect_left(row_step, u), active  # rows whose loss is taken under θ_u
                if lo < hi:
                    picked = [rows[r] % K for r in range(lo, hi)]
                    g_w, g_x = _loss_term_gradients(traj, params, buffers, xb, yb, noise, output, u, picked, direct)
                    for k, g in g_w.items():
                        lam_w[k][:, lo:hi] += g.transpose(0, 1)
                    if direct:
                        _add_to_rows(jac, lo, idx, g_x)
        yield torch.tensor(rows, device=dev), jac.view(len(rows), S, N, *shape)


def _curvature_(lam_w, jac, first, traj: Trajectory, params, buffers, idx, xb, yb, noise, a):
    """The update's second-order term for rows first..: lam_w += H_ww·a, and H_xw·a to the batch's inputs."""
    hx = add_loss_hvp_(lam_w, traj.arch, params, buffers, xb, yb, traj.spec.loss, noise, a)
    _add_to_rows(jac, first, idx, hx.transpose(0, 1))


def _loss_term_gradients(traj: Trajectory, params, buffers, xb, yb, noise, output, step: int, picked, direct: bool):
    """For each picked term k: the gradients of Σ_s L_{step,s,k} under θ_step with respect to the parameters
    ({name: (rows, S, ...)}) and, when `direct`, to the batch's inputs ((rows, S, B, ...), else None)."""
    p = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    xo = xb.clone().requires_grad_(True) if direct else xb
    logits, _ = forward(traj.arch, p, buffers, xo, train=True, noise=noise.again() if noise else None)
    terms = output(step, logits, yb)
    pick = torch.zeros((len(picked), *terms.shape), dtype=terms.dtype, device=terms.device)
    pick[torch.arange(len(picked)), :, torch.tensor(picked)] = 1
    inputs = list(p.values()) + ([xo] if direct else [])
    grads = torch.autograd.grad(terms, inputs, grad_outputs=pick, is_grads_batched=True)
    return dict(zip(p, grads)), grads[-1] if direct else None


def _add_to_rows(jac: torch.Tensor, first: int, idx: torch.Tensor, g: torch.Tensor):
    """jac[first + r, s·N + idx[s, b]] += g[r, s, b] (an example drawn several times sums its influences)."""
    rows, S, B = g.shape[:3]
    N = jac.shape[1] // S
    shape = jac.shape[2:]
    at = (idx + torch.arange(S, device=idx.device)[:, None] * N).reshape(1, -1)
    where = (first + torch.arange(rows, device=idx.device))[:, None] * (S * N) + at
    jac.view(-1, *shape).index_add_(0, where.reshape(-1), g.reshape(-1, *shape))


def _terms_per_step(spec: RunSpec, timeline: Timeline, by: str, n_classes: int, out_steps: list[int]) -> int:
    if by == "batch":
        return 1
    if by == "class":
        return n_classes
    sizes = {next(timeline.steps(list(spec.seeds), t, t + 1))[2].shape[1] for t in out_steps}
    if len(sizes) != 1:
        raise ValueError(f"per-example loss terms need output steps with batches of one size; got {sorted(sizes)}")
    return sizes.pop()


def sensitivity_norms(
    spec: RunSpec, x_train, y_train, n_classes: int, out_steps: list[int], *, norm: str = "l1", **replay
) -> torch.Tensor:
    """‖∂L_{m,s,k}/∂x_{s,n}‖ for every output (m, s, k) and example n of the same seed: (M, S, K, N), the
    output steps in increasing order. replay: the settings of `input_jacobian`."""
    dims = x_train.dim() - 1
    rows = [
        input_norm(jac, norm, dims) for _, jac in input_jacobian(spec, x_train, y_train, n_classes, out_steps, **replay)
    ]
    norms = torch.cat(rows)  # (M·K, S, N)
    return norms.view(len(out_steps), -1, *norms.shape[1:]).transpose(1, 2)


def loss_sensitivity(
    spec: RunSpec,
    x_train,
    y_train,
    n_classes: int,
    checkpoint: int,
    *,
    window: int = 500,
    stride: int = 2,
    norm: str = "l1",
    run_dir=None,
    horizon: int | None = None,
    chunk: int = 256,
    segment: int | None = None,
) -> torch.Tensor:
    """ḡ_x at a checkpoint: the mean over the window's steps of ‖∂L_t/∂x‖, for every seed and example (S, N)."""
    steps = window_steps(checkpoint, window, stride)
    norms = sensitivity_norms(
        spec,
        x_train,
        y_train,
        n_classes,
        steps,
        norm=norm,
        run_dir=run_dir,
        horizon=horizon,
        chunk=chunk,
        segment=segment,
    )
    return norms[:, :, 0].mean(0)


def class_sensitivity(
    spec: RunSpec,
    x_train,
    y_train,
    n_classes: int,
    checkpoint: int,
    *,
    window: int = 500,
    stride: int = 2,
    norm: str = "l1",
    run_dir=None,
    horizon: int | None = None,
    chunk: int = 256,
    segment: int | None = None,
    variant: str = "paper",
) -> torch.Tensor:
    """ḡ_{i,j} (docs/science.md §3.4), (S, C, C) with rows i (class of the loss) and columns j (class of the
    training inputs x).

    variant "paper": the paper's formula, the mean over the window's steps and over training examples x of
    class j of ‖∂L_t(y=i)/∂x‖, where L_t(y=i) is the class-i term of step t's batch loss, through the updates
    as ḡ_x. Variant "authors": their code, the last batch only (step T − 1) with its direct path kept, one
    norm per batch example b and training example x, averaged over the x of class j and over the b labelled
    i (NaN for a class absent from that batch)."""
    replay = {"norm": norm, "run_dir": run_dir, "horizon": horizon, "chunk": chunk, "segment": segment}
    onehot = torch.nn.functional.one_hot(y_train, n_classes).to(x_train.dtype)  # (N, C)
    per_class = onehot.sum(0).clamp_min(1)
    if variant == "paper":
        steps = window_steps(checkpoint, window, stride)
        norms = sensitivity_norms(spec, x_train, y_train, n_classes, steps, by="class", **replay).mean(0)  # (S, C, N)
        return norms @ onehot / per_class  # (S, C, C): mean over examples of class j
    if variant != "authors":
        raise ValueError(f"unknown class_sensitivity variant {variant!r}; 'paper' or 'authors'")
    last = checkpoint - 1
    norms = sensitivity_norms(spec, x_train, y_train, n_classes, [last], by="example", direct=True, **replay)[
        0
    ]  # (S, B, N)
    by_inputs = norms @ onehot / per_class  # (S, B, C): mean over the inputs of class j
    timeline = Timeline.from_spec(spec, len(x_train))
    ((_, _, idx),) = timeline.steps(list(spec.seeds), last, last + 1, x_train.device)
    rows = torch.nn.functional.one_hot(y_train[idx], n_classes).to(norms.dtype).transpose(1, 2)  # (S, C, B)
    count = rows.sum(2, keepdim=True)
    return torch.where(count > 0, rows @ by_inputs / count.clamp_min(1), torch.nan)
