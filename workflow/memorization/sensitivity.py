"""Loss sensitivity through SGD (docs/science.md §3.2–3.4). (Its Gini coefficient is in stats.py.)

g_x^t = ‖∂L_t/∂x‖ is the influence of training input x on the loss after t SGD updates. It flows only
through the parameter updates x took part in: L_t is the mini-batch loss of step t with that batch's
inputs detached (the authors' `disconnected_grad`), while x stays connected wherever it entered an
earlier update. We therefore replay the run's SGD steps differentiably — the same batches (rebuilt from
the stateless per-(seed, epoch) generators), the same `sgd_step` as training, second-order gradients
kept — and take ∂L_t/∂X for every training example at once with one batched backward pass.

A plain input gradient of each example's own loss is a different quantity (its off-diagonal per-class
cells are zero); it is not offered here.
"""

from __future__ import annotations

from pathlib import Path

import torch

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


def replay_losses(
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
):
    """Replay the run's SGD trajectory with the graph kept; return (batches, L).

    batches: one (indices (S, B), inputs (S, B, ...)) per replayed update, the inputs a leaf of the graph.
      Each update gets its own leaf rather than a slice of one big input tensor: the backward of a slice
      writes a gradient the size of the whole training set at every step, which made the replay 50x slower.
    L: (len(out_steps), S, K) the loss of step t's batch under θ_t: by "batch" K = 1, L_t itself; by "class"
      K = n_classes with L[..., i] the class-i term (the batch examples labelled i; the terms sum to L_t); by
      "example" K = B, each batch example's own loss.
    direct: keep the direct path x → L_t of the output step's batch (the authors' per-class code); by
      default it is cut (their loss-sensitivity code: the batch inputs are detached there).
    horizon: unroll only this many steps before the first output step (None: from initialisation, as the
    authors' code, so every update since the start counts).
    """
    device = x_train.device
    seeds = list(spec["seeds"])
    reg = Regularizer.from_spec(spec)
    if reg.adversarial:
        raise ValueError(
            "loss sensitivity cannot replay adversarial training (the LASS search inside each step "
            "is not differentiable); leave sensitivity tables out of dropout_adversarial runs"
        )
    S, N = len(seeds), len(x_train)
    arch = Arch.from_spec(spec, tuple(x_train.shape[1:]), n_classes)
    plan = Schedule.from_spec(spec, N)
    first, last = min(out_steps), max(out_steps)
    begin = 0 if horizon is None else max(0, first - horizon)
    params, buffers, velocity, loaded = start_state(spec, arch, run_dir, begin, device)
    params = {k: v.to(x_train.dtype) for k, v in params.items()}
    velocity = {k: v.to(x_train.dtype) for k, v in velocity.items()}
    buffers = {k: v.to(x_train.dtype) for k, v in buffers.items()}
    for t, epoch, idx in plan.steps(seeds, loaded, begin, device):  # fast-forward, no graph: held constant
        train_step(
            arch,
            params,
            buffers,
            velocity,
            x_train[idx],
            y_train[idx],
            lr=learning_rate(spec, epoch),
            momentum=spec["momentum"],
            groups=[slice(0, S)],
            loss=spec["loss"],
            reg=reg,
            seeds=seeds,
            step=t,
        )

    params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    wanted, outputs, batches = set(out_steps), {}, []
    for step, epoch, idx in plan.steps(seeds, max(loaded, begin), last + 1, device):
        xb, yb = x_train[idx], y_train[idx]
        if step in wanted:  # L_t under θ_t, the direct path x → L_t cut unless asked for
            xo = xb
            if direct:
                xo = xb.clone().requires_grad_(True)
                batches.append((idx, xo))
            logits, _ = forward(arch, params, buffers, xo, train=True, noise=layer_noise(reg, seeds, step, device))
            losses = example_losses(logits, yb, spec["loss"])
            if by == "example":
                outputs[step] = losses
            elif by == "class":  # terms of the batch mean, per class
                outputs[step] = torch.zeros(S, n_classes, dtype=losses.dtype, device=device).scatter_add(
                    1, yb, losses / yb.shape[1]
                )
            else:
                outputs[step] = losses.mean(1, keepdim=True)
        if step == last:
            break
        xb = xb.clone().requires_grad_(True)
        batches.append((idx, xb))
        logits, buffers = forward(arch, params, buffers, xb, train=True, noise=layer_noise(reg, seeds, step, device))
        total = example_losses(logits, yb, spec["loss"]).mean(1).sum()
        grads = dict(zip(params, torch.autograd.grad(total, list(params.values()), create_graph=True)))
        params, velocity = sgd_step(
            params,
            grads,
            velocity,
            lr=learning_rate(spec, epoch),
            momentum=spec["momentum"],
            weight_decay=reg.weight_decay,
        )
    return batches, torch.stack([outputs[t] for t in out_steps])


def input_jacobian(batches, L: torch.Tensor, n_train: int, *, chunk: int = 64):
    """Yield (row indices, J) for chunks of the M·K outputs (m, k) of L (shape (M, S, K)), by batched
    backward, where J[c, s, n] = ∂L_{m,s,k}/∂x_n for seed s's copy of training input n: (chunk, S, N, ...).

    One backward row serves every seed: the seeds are independent copies of the run stacked along axis 1
    (their own parameters, batches, BatchNorm statistics and noise), so the gradient of Σ_s L_{m,s,k} with
    respect to seed s's inputs is that of L_{m,s,k} alone. S seeds then cost one backward pass per output
    step instead of S (the graph itself is vectorised over seeds)."""
    M, S, K = L.shape
    per_row = L.sum(1).reshape(-1)  # row m·K + k: Σ_s L_{m,s,k}
    leaves = [xb for _, xb in batches]
    shape = leaves[0].shape[2:] if leaves else ()
    eye = torch.eye(len(per_row), dtype=L.dtype, device=L.device)
    seed_offset = torch.arange(S, device=L.device)[:, None] * n_train
    for start in range(0, len(per_row), chunk):
        rows = torch.arange(start, min(start + chunk, len(per_row)))
        jac = torch.zeros((len(rows), S * n_train, *shape), dtype=L.dtype, device=L.device)
        if leaves:
            grads = torch.autograd.grad(
                per_row, leaves, grad_outputs=eye[rows], is_grads_batched=True, retain_graph=True, allow_unused=True
            )
            for (idx, _), g in zip(batches, grads):
                if g is not None:  # an example used at several steps sums its influences
                    jac.index_add_(1, (idx + seed_offset).reshape(-1), g.reshape(len(rows), -1, *shape))
        yield rows, jac.view(len(rows), S, n_train, *shape)


def sensitivity_norms(batches, L: torch.Tensor, n_train: int, norm: str = "l1", chunk: int = 64) -> torch.Tensor:
    """‖∂L_{m,s,k}/∂x_{s,n}‖ for every output (m, s, k) and example n of the same seed: (M, S, K, N)."""
    M, S, K = L.shape
    out = torch.zeros(M * K, S, n_train, dtype=L.dtype, device=L.device)
    for rows, jac in input_jacobian(batches, L, n_train, chunk=chunk):
        out[rows] = input_norm(jac, norm, jac.dim() - 3)
    return out.view(M, K, S, n_train).transpose(1, 2)


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
) -> torch.Tensor:
    """ḡ_x at a checkpoint: the mean over the window's steps of ‖∂L_t/∂x‖, for every seed and example (S, N)."""
    steps = window_steps(checkpoint, window, stride)
    batches, L = replay_losses(spec, x_train, y_train, n_classes, steps, run_dir=run_dir, horizon=horizon)
    return sensitivity_norms(batches, L, len(x_train), norm, chunk)[:, :, 0].mean(0)


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
    variant: str = "paper",
) -> torch.Tensor:
    """ḡ_{i,j} (docs/science.md §3.4), (S, C, C) with rows i (class of the loss) and columns j (class of the
    training inputs x).

    variant "paper": the paper's formula, the mean over the window's steps and over training examples x of
    class j of ‖∂L_t(y=i)/∂x‖, where L_t(y=i) is the class-i term of step t's batch loss, through the updates
    as ḡ_x. Variant "authors": their code, the last batch only (step T − 1) with its direct path kept, one
    norm per batch example b and training example x, averaged over the x of class j and over the b labelled
    i (NaN for a class absent from that batch)."""
    onehot = torch.nn.functional.one_hot(y_train, n_classes).to(x_train.dtype)  # (N, C)
    per_class = onehot.sum(0).clamp_min(1)
    if variant == "paper":
        steps = window_steps(checkpoint, window, stride)
        batches, L = replay_losses(
            spec, x_train, y_train, n_classes, steps, run_dir=run_dir, horizon=horizon, by="class"
        )
        norms = sensitivity_norms(batches, L, len(x_train), norm, chunk).mean(0)  # (S, C, N)
        return norms @ onehot / per_class  # (S, C, C): mean over examples of class j
    if variant != "authors":
        raise ValueError(f"unknown class_sensitivity variant {variant!r}; 'paper' or 'authors'")
    last = checkpoint - 1
    batches, L = replay_losses(
        spec, x_train, y_train, n_classes, [last], run_dir=run_dir, horizon=horizon, by="example", direct=True
    )
    norms = sensitivity_norms(batches, L, len(x_train), norm, chunk)[0]  # (S, B, N)
    by_inputs = norms @ onehot / per_class  # (S, B, C): mean over the inputs of class j
    plan = Schedule.from_spec(spec, len(x_train))
    ((_, _, idx),) = plan.steps(list(spec["seeds"]), last, last + 1, x_train.device)
    rows = torch.nn.functional.one_hot(y_train[idx], n_classes).to(norms.dtype).transpose(1, 2)  # (S, C, B)
    count = rows.sum(2, keepdim=True)
    return torch.where(count > 0, rows @ by_inputs / count.clamp_min(1), torch.nan)
