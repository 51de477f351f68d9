"""The loss-sensitivity replay as first written (before the segmented reverse sweep): the whole unrolled
graph of every SGD step kept, one batched backward pass over it per chunk of outputs. Its memory grows with
T; kept here only as the reference that `memorization.sensitivity.input_jacobian` is checked against."""

from __future__ import annotations

import torch

from memorization.engine.models import Arch, example_losses, forward
from memorization.engine.regularizers import Regularizer, layer_noise
from memorization.engine.sgd import sgd_step, train_step
from memorization.engine.timeline import Timeline, learning_rate
from memorization.measures.sensitivity import start_state


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
    seeds = list(spec.seeds)
    reg = Regularizer.from_spec(spec)
    if reg.adversarial:
        raise ValueError(
            "loss sensitivity cannot replay adversarial training (the LASS search inside each step "
            "is not differentiable); leave sensitivity tables out of dropout_adversarial runs"
        )
    S, N = len(seeds), len(x_train)
    arch = Arch.from_spec(spec, tuple(x_train.shape[1:]), n_classes)
    timeline = Timeline.from_spec(spec, N)
    first, last = min(out_steps), max(out_steps)
    begin = 0 if horizon is None else max(0, first - horizon)
    params, buffers, velocity, loaded = start_state(spec, arch, run_dir, begin, device)
    params = {k: v.to(x_train.dtype) for k, v in params.items()}
    velocity = {k: v.to(x_train.dtype) for k, v in velocity.items()}
    buffers = {k: v.to(x_train.dtype) for k, v in buffers.items()}
    for t, epoch, idx in timeline.steps(seeds, loaded, begin, device):  # fast-forward, no graph: held constant
        train_step(
            arch,
            params,
            buffers,
            velocity,
            x_train[idx],
            y_train[idx],
            lr=learning_rate(spec, epoch),
            momentum=spec.momentum,
            groups=[slice(0, S)],
            loss=spec.loss,
            reg=reg,
            seeds=seeds,
            step=t,
        )

    params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    wanted, outputs, batches = set(out_steps), {}, []
    for step, epoch, idx in timeline.steps(seeds, max(loaded, begin), last + 1, device):
        xb, yb = x_train[idx], y_train[idx]
        if step in wanted:  # L_t under θ_t, the direct path x → L_t cut unless asked for
            xo = xb
            if direct:
                xo = xb.clone().requires_grad_(True)
                batches.append((idx, xo))
            logits, _ = forward(arch, params, buffers, xo, train=True, noise=layer_noise(reg, seeds, step, device))
            losses = example_losses(logits, yb, spec.loss)
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
        total = example_losses(logits, yb, spec.loss).mean(1).sum()
        grads = dict(zip(params, torch.autograd.grad(total, list(params.values()), create_graph=True)))
        params, velocity = sgd_step(
            params,
            grads,
            velocity,
            lr=learning_rate(spec, epoch),
            momentum=spec.momentum,
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
