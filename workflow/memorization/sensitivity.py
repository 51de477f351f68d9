"""Loss sensitivity through SGD (docs/science.md §3.2–3.4). (Its Gini coefficient is in stats.py.)

g_x^t = ‖∂L_t/∂x‖ is the influence of training input x on the loss after t SGD updates. It flows only
through the parameter updates x took part in: L_t is the mini-batch loss of step t with that batch's
inputs detached (the authors' `disconnected_grad`), while x stays connected wherever it entered an
earlier update. We therefore replay the run's SGD steps differentiably — the same batches (rebuilt from
the stateless per-(seed, epoch) generators), the same `sgd_step` as training, second-order gradients
kept — and take ∂L_t/∂X for every training example at once with one batched reverse sweep, segment by
segment, in memory that grows as √T rather than T (`Trajectory`).

A plain input gradient of each example's own loss is a different quantity (its off-diagonal per-class
cells are zero); it is not offered here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .memory import replay_segment
from .models import Arch, example_losses, forward
from .regularizers import Regularizer, layer_noise
from .sgd import Schedule, initial_state, learning_rate, load_state, sgd_step, train_step

NORMS = ("l1", "l2", "linf")


def window_steps(checkpoint: int, window: int, stride: int) -> list[int]:
    """Steps t whose L_t is averaged for a checkpoint at step T: T−stride, T−2·stride, … ≥ max(0, T−window).
    The authors: window 500, stride 2 (t = T−500, …, T−2)."""
    return sorted(checkpoint - k * stride for k in range(1, window // stride + 1) if checkpoint - k * stride >= 0)


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


def start_state(spec: dict, arch: Arch, run_dir, step: int, device):
    """(params, buffers, velocity, step) from the latest checkpoint at or before `step`, else the
    initialisation (which needs no file: it is a function of the seeds)."""
    ckpts = sorted(Path(run_dir, "checkpoints").glob("step_*.pt")) if run_dir else []
    usable = [p for p in ckpts if int(p.stem.split("_")[1]) <= step]
    if usable:
        state = load_state(usable[-1], device)
        return state["params"], state["buffers"], state["velocity"], int(state["step"])
    return (*initial_state(arch, list(spec["seeds"]), device), 0)


@dataclass
class Trajectory:
    """A run's SGD trajectory from `begin` to the last output step, held as the state (params, buffers,
    velocity) at the start of each segment, computed once by the training step without a graph. A segment is
    unrolled again with its graph (second order) only while the reverse sweep passes through it, so the
    replay's memory grows as √(T · rows) (the stored states against one segment's graph held for every row
    of a pass, `memory.replay_segment`), not as T (the whole graph). Parameters before `begin` are held
    constant (the `horizon`)."""

    spec: dict
    arch: Arch
    schedule: Schedule
    reg: Regularizer
    x: torch.Tensor
    y: torch.Tensor
    starts: list[int]  # first step of each segment; segment i covers steps starts[i] .. starts[i+1]-1
    states: list[tuple[dict, dict, dict]]  # (params, buffers, velocity) at each start
    last: int  # the last output step: the last segment ends with its loss, not an update

    @classmethod
    def replay(
        cls,
        spec: dict,
        x: torch.Tensor,
        y: torch.Tensor,
        n_classes: int,
        begin: int,
        last: int,
        *,
        run_dir=None,
        segment: int | None = None,
        rows: int = 1,
    ) -> Trajectory:
        """The trajectory from `begin` to `last`, in segments of `segment` steps, or of the length that
        minimises the memory of a sweep with `rows` outputs per pass (`memory.replay_segment`)."""
        reg = Regularizer.from_spec(spec)
        if reg.adversarial:
            raise ValueError(
                "loss sensitivity cannot replay adversarial training (the LASS search inside each step "
                "is not differentiable); leave sensitivity tables out of dropout_adversarial runs"
            )
        seeds, device = list(spec["seeds"]), x.device
        arch = Arch.from_spec(spec, tuple(x.shape[1:]), n_classes)
        schedule = Schedule.from_spec(spec, len(x))
        params, buffers, velocity, loaded = start_state(spec, arch, run_dir, begin, device)
        state = [{k: v.to(x.dtype) for k, v in d.items()} for d in (params, buffers, velocity)]
        begin = max(begin, loaded)
        n_steps = last + 1 - begin
        segment = segment or replay_segment(arch, len(seeds), spec["batch_size"], n_steps, rows)
        starts = list(range(begin, last + 1, segment))
        states, wanted = [], set(starts)
        for t, epoch, idx in schedule.steps(seeds, loaded, starts[-1] + 1, device):
            if t in wanted:
                states.append(tuple({k: v.clone() for k, v in d.items()} for d in state))
            if t == starts[-1]:
                break
            train_step(
                arch,
                *state,
                x[idx],
                y[idx],
                lr=learning_rate(spec, epoch),
                momentum=spec["momentum"],
                groups=[slice(0, len(seeds))],
                loss=spec["loss"],
                reg=reg,
                seeds=seeds,
                step=t,
            )
        return cls(spec, arch, schedule, reg, x, y, starts, states, last)

    def unroll(self, i: int, output, direct: bool = False):
        """Segment i again, from its stored state made a leaf of the graph, every update differentiable (the
        same `sgd_step` as training). output(step, logits, labels) -> (S, K) or None: the loss terms wanted
        at that step, under θ_step (the direct path x → output cut unless `direct`).

        Returns (start, batches, outputs, end): start and end are (params, velocity) at the segment's ends,
        batches one (indices (S, B), inputs) per batch that entered the graph, each inputs a leaf of its own
        (the backward of a slice of one big input tensor writes a gradient the size of the training set at
        every step: 50x slower), outputs {step: (S, K)}."""
        spec, seeds, dev = self.spec, list(self.spec["seeds"]), self.x.device
        params, buffers, velocity = self.states[i]
        params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        velocity = {k: v.detach().requires_grad_(True) for k, v in velocity.items()}
        start, batches, outputs = (params, velocity), [], {}
        stop = self.starts[i + 1] if i + 1 < len(self.starts) else self.last + 1
        for step, epoch, idx in self.schedule.steps(seeds, self.starts[i], stop, dev):
            xb, yb = self.x[idx], self.y[idx]
            xo = xb.clone().requires_grad_(True) if direct else xb  # each forward pass redraws the step's masks
            logits, _ = forward(
                self.arch, params, buffers, xo, train=True, noise=layer_noise(self.reg, seeds, step, dev)
            )
            terms = output(step, logits, yb)
            if terms is not None:
                outputs[step] = terms
                if direct:
                    batches.append((idx, xo))
            if step == self.last:
                break
            xb = xb.clone().requires_grad_(True)
            batches.append((idx, xb))
            logits, buffers = forward(
                self.arch, params, buffers, xb, train=True, noise=layer_noise(self.reg, seeds, step, dev)
            )
            total = example_losses(logits, yb, spec["loss"]).mean(1).sum()
            grads = dict(zip(params, torch.autograd.grad(total, list(params.values()), create_graph=True)))
            params, velocity = sgd_step(
                params,
                grads,
                velocity,
                lr=learning_rate(spec, epoch),
                momentum=spec["momentum"],
                weight_decay=self.reg.weight_decay,
            )
        return start, batches, outputs, (params, velocity)


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
    spec: dict,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    n_classes: int,
    out_steps: list[int],
    *,
    run_dir=None,
    by: str = "batch",
    direct: bool = False,
    horizon: int | None = None,
    chunk: int = 64,
    segment: int | None = None,
):
    """Yield (row indices, J) for chunks of the M·K outputs (m, k) of the replayed loss terms (M output
    steps, K terms each, `loss_terms`), where J[c, s, n] = ∂L_{m,s,k}/∂x_n for seed s's copy of training
    input n: (chunk, S, N, ...).

    One reverse sweep per chunk, segment by segment from the last (`Trajectory`): each segment is unrolled
    with its graph and one batched backward pass (`is_grads_batched`: a row per output) takes the outputs in
    it and the cotangents of its end state to the gradients of its batches' inputs and the cotangents of its
    start state. A row whose output step lies before a segment is zero there and is left out.

    One backward row serves every seed: the seeds are independent copies of the run stacked along axis 1
    (their own parameters, batches, BatchNorm statistics and noise), so the gradient of Σ_s L_{m,s,k} with
    respect to seed s's inputs is that of L_{m,s,k} alone. S seeds then cost one row per output instead of S
    (the graph itself is vectorised over seeds).

    direct: keep the direct path x → L_t of the output step's batch (the authors' per-class code); by
    default it is cut (their loss-sensitivity code: the batch inputs are detached there). horizon: unroll
    only this many steps before the first output step (None: from initialisation, as the authors' code)."""
    out_steps = sorted(out_steps)
    K = _terms_per_step(spec, Schedule.from_spec(spec, len(x_train)), by, n_classes, out_steps)
    traj = Trajectory.replay(
        spec,
        x_train,
        y_train,
        n_classes,
        _begin(out_steps, horizon),
        out_steps[-1],
        run_dir=run_dir,
        segment=segment,
        rows=min(chunk, len(out_steps) * K),
    )
    S, N, shape, dev = len(spec["seeds"]), len(x_train), tuple(x_train.shape[1:]), x_train.device
    position = {t: m for m, t in enumerate(out_steps)}
    output = loss_terms(by, spec["loss"], n_classes, out_steps)
    for first in range(0, len(out_steps) * K, chunk):
        rows = torch.arange(first, min(first + chunk, len(out_steps) * K), device=dev)
        row_step = torch.tensor(out_steps, device=dev)[rows // K]
        jac = torch.zeros((len(rows), S * N, *shape), dtype=x_train.dtype, device=dev)
        cotangent = None  # of the next segment's start state, every row: (params, velocity)
        for i in reversed(range(len(traj.starts))):
            active = (row_step >= traj.starts[i]).nonzero()[:, 0]  # the others are zero here
            if not len(active):
                continue
            start, batches, outputs, end = traj.unroll(i, output, direct)
            targets, seeds_of = [], []
            for t, terms in outputs.items():  # row m·K + k asks for Σ_s L_{m,s,k}
                pick = torch.zeros((len(active), *terms.shape), dtype=terms.dtype, device=dev)
                mine = (rows[active] // K == position[t]).nonzero()[:, 0]
                pick[mine, :, rows[active][mine] % K] = 1
                targets.append(terms)
                seeds_of.append(pick)
            if cotangent is not None:
                for state, lam in zip(end, cotangent):
                    targets += list(state.values())
                    seeds_of += [lam[k][active] for k in state]
            leaves = [xb for _, xb in batches]
            inputs = leaves + list(start[0].values()) + list(start[1].values())
            grads = torch.autograd.grad(
                targets, inputs, grad_outputs=seeds_of, is_grads_batched=True, allow_unused=True
            )
            for (idx, _), g in zip(batches, grads):
                if g is not None:  # an example used at several steps sums its influences
                    where = active[:, None] * (S * N) + (idx + torch.arange(S, device=dev)[:, None] * N).reshape(1, -1)
                    jac.view(-1, *shape).index_add_(0, where.reshape(-1), g.reshape(-1, *shape))
            cotangent = tuple(
                {k: _scattered(g, active, len(rows), v) for (k, v), g in zip(part.items(), part_grads)}
                for part, part_grads in (
                    (start[0], grads[len(leaves) : len(leaves) + len(start[0])]),
                    (start[1], grads[len(leaves) + len(start[0]) :]),
                )
            )
        yield rows, jac.view(len(rows), S, N, *shape)


def _scattered(g, active: torch.Tensor, n_rows: int, like: torch.Tensor) -> torch.Tensor:
    """A cotangent for every row: the active rows' gradient, zero for the others (and for an unused input)."""
    out = torch.zeros((n_rows, *like.shape), dtype=like.dtype, device=like.device)
    if g is not None:
        out[active] = g
    return out


def _terms_per_step(spec: dict, schedule: Schedule, by: str, n_classes: int, out_steps: list[int]) -> int:
    if by == "batch":
        return 1
    if by == "class":
        return n_classes
    sizes = {next(schedule.steps(list(spec["seeds"]), t, t + 1))[2].shape[1] for t in out_steps}
    if len(sizes) != 1:
        raise ValueError(f"per-example loss terms need output steps with batches of one size; got {sorted(sizes)}")
    return sizes.pop()


def sensitivity_norms(
    spec: dict, x_train, y_train, n_classes: int, out_steps: list[int], *, norm: str = "l1", **replay
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
    spec: dict,
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
    chunk: int = 64,
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
    spec: dict,
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
    chunk: int = 64,
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
    plan = Schedule.from_spec(spec, len(x_train))
    ((_, _, idx),) = plan.steps(list(spec["seeds"]), last, last + 1, x_train.device)
    rows = torch.nn.functional.one_hot(y_train[idx], n_classes).to(norms.dtype).transpose(1, 2)  # (S, C, B)
    count = rows.sum(2, keepdim=True)
    return torch.where(count > 0, rows @ by_inputs / count.clamp_min(1), torch.nan)
