"""The SGD core that training and the differentiable replay of loss sensitivity share: the one SGD update
and its transpose, the batched training step of every seed, evaluation, the initial state, seed groups. The
timeline of batches, evaluations and checkpoints is memorization.engine.timeline's."""

from __future__ import annotations

import os
from functools import partial

import torch

from ..results.files import load_checkpoint
from .architecture import params_per_model
from .backprop import OuterProduct, by_autograd, dense_gradients, loss_gradients
from .lass import lass, to_input_units
from .memory import EVAL_BATCH, EVAL_GROUP_PARAMS, seed_groups
from .models import Arch, example_losses, forward, init_params, seed_for
from .regularizers import NONE as NO_REG
from .regularizers import Regularizer, adversarial_mix, layer_noise


def seed_slices(tensors: dict, group: slice) -> dict:
    """The seeds `group` of stacked tensors: views, so that writing into them writes into the stack."""
    return {k: v[group] for k, v in tensors.items()}


# ----------------------------------------------------------------------------- the one SGD step


def decays(name: str) -> bool:
    """Whether weight decay acts on a parameter: the kernels (`fc0.weight`, `conv1.weight`), not biases or
    BatchNorm parameters (`conv1.bn.weight`)."""
    return name.endswith(".weight") and ".bn." not in name


def sgd_step(
    params: dict, grads: dict, velocity: dict, *, lr: float, momentum: float, weight_decay: float, inplace: bool = False
):
    """One SGD update with PyTorch's semantics (v ← μ·v + g + λ·w; w ← w − lr·v). Returns (params, velocity).

    Weight decay acts on the kernels only (dense and convolution weights, `decays`), as Keras' kernel `l2`
    regulariser, which the paper used: biases and BatchNorm scales and shifts are not decayed. λ·w is
    PyTorch's convention, Keras' `l2(λ/2)`. A gradient may be an OuterProduct.

    This is the only place parameters change. The differentiable replay of loss sensitivity calls it as a
    pure function (inplace=False: new tensors, graph kept). Training calls it with inplace=True, which
    writes into the given tensors (views into the stacked seeds): fresh 100-model tensors every step would
    cost an allocation and page faults per step, which on a CPU doubles the step time.
    """
    if inplace:
        return _sgd_step_(params, grads, velocity, lr=lr, momentum=momentum, weight_decay=weight_decay)
    grads = dense_gradients(grads)
    new_params, new_velocity = {}, {}
    for name, w in params.items():
        g = grads[name] + weight_decay * w if weight_decay and decays(name) else grads[name]
        v = momentum * velocity[name] + g if momentum else g
        new_params[name] = w - lr * v
        new_velocity[name] = v
    return new_params, new_velocity


def _sgd_step_(params: dict, grads: dict, velocity: dict, *, lr: float, momentum: float, weight_decay: float):
    """sgd_step in place. A factored kernel gradient goes into one product: v ← μ·v + hᵀδ (then + λ·w), or
    without momentum w ← (1 − lr·λ)·w − lr·hᵀδ. Every other parameter is updated in one call per operation
    (torch._foreach_*): per-tensor calls are three small operations per parameter per step, and on a CPU their
    dispatch is a tenth of a small model's step. Returns (params, velocity)."""
    names = list(params)
    factored = [k for k in names if isinstance(grads[k], OuterProduct)]
    for k in factored:
        g, w, decay = grads[k], params[k], weight_decay if decays(k) else 0.0
        if momentum:
            g.add_to_(velocity[k], beta=momentum)
            if decay:
                velocity[k].add_(w, alpha=decay)
        else:
            g.add_to_(w, beta=1.0 - lr * decay, alpha=-lr)
    rest = [k for k in names if k not in factored]
    ws, gs = [params[k] for k in rest], [grads[k] for k in rest]
    decayed = [i for i, k in enumerate(rest) if decays(k)] if weight_decay else []
    if decayed:
        plus_decay = torch._foreach_add([gs[i] for i in decayed], [ws[i] for i in decayed], alpha=weight_decay)
        for i, g in zip(decayed, plus_decay):
            gs[i] = g
    if momentum:
        vs = [velocity[k] for k in rest]
        torch._foreach_mul_(vs, momentum)
        torch._foreach_add_(vs, gs)
        # every parameter's w ← w − lr·v in one call, the factored kernels' too
        torch._foreach_sub_(ws + [params[k] for k in factored], vs + [velocity[k] for k in factored], alpha=lr)
    elif ws:
        torch._foreach_sub_(ws, gs, alpha=lr)
    return params, velocity


def sgd_step_vjp_(
    lam_params: dict, lam_velocity: dict, through_gradient, *, lr: float, momentum: float, weight_decay: float
):
    """The transpose of sgd_step, in place: the cotangents (λ_w', λ_v') of its outputs (any leading axes, e.g.
    a row per output of the replay) become those of its inputs w and v. With a = λ_v' − lr·λ_w' the cotangent
    of the gradient g (weight decay included): λ_w = λ_w' + λ·a (decayed kernels) + (∂g/∂w)ᵀa and λ_v = μ·a.
    through_gradient(a) adds (∂g/∂w)ᵀa to lam_params (the loss's curvature, memorization.engine.curvature) and takes
    whatever else it needs of a (its inputs' part); a is only valid during that call."""
    names = list(lam_params)
    lw, a = [lam_params[k] for k in names], [lam_velocity[k] for k in names]
    torch._foreach_sub_(a, lw, alpha=lr)
    if weight_decay:
        decayed = [i for i, k in enumerate(names) if decays(k)]
        torch._foreach_add_([lw[i] for i in decayed], [a[i] for i in decayed], alpha=weight_decay)
    through_gradient(dict(zip(names, a)))
    torch._foreach_mul_(a, momentum)


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(
    arch: Arch,
    params,
    buffers,
    x: torch.Tensor,
    y: torch.Tensor,
    loss: str = "cross_entropy",
):
    """Eval-mode per-example loss (the run's training loss), correctness and probability of the label (softmax)
    of every seed's model: three (S, N) tensors."""
    S = next(iter(params.values())).shape[0]
    groups = seed_groups(S, params_per_model(arch), EVAL_GROUP_PARAMS[x.device.type])
    chunk = EVAL_BATCH[x.device.type]
    losses = torch.full((S, len(x)), float("nan"), device=x.device)
    correct = torch.zeros((S, len(x)), dtype=torch.bool, device=x.device)
    p_label = torch.full((S, len(x)), float("nan"), device=x.device)
    for g in groups:
        p, b = seed_slices(params, g), seed_slices(buffers, g)
        for i in range(0, len(x), chunk):
            logits, _ = forward(arch, p, b, x[i : i + chunk], train=False)
            yb = y[i : i + chunk].expand(logits.shape[0], -1)
            chunk_losses = example_losses(logits, yb, loss)
            losses[g, i : i + chunk] = chunk_losses
            correct[g, i : i + chunk] = logits.argmax(-1) == yb
            if loss == "cross_entropy":  # the loss is −log p_y: p_y without another softmax
                p_label[g, i : i + chunk] = torch.exp(-chunk_losses)
            else:
                p_label[g, i : i + chunk] = torch.softmax(logits, -1).gather(2, yb.unsqueeze(2)).squeeze(2)
    return losses, correct, p_label


def margins(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The logit of the label minus the largest other logit, before the softmax (Pleiss et al. 2020's margin,
    whose mean over training is the AUM): (S, B) from logits (S, B, C) and labels (S, B)."""
    at_y = y.unsqueeze(2)
    return logits.gather(2, at_y).squeeze(2) - logits.scatter(2, at_y, float("-inf")).amax(2)


def train_step(
    arch: Arch,
    params,
    buffers,
    velocity,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    groups: list[slice],
    seeds=(),
    presented: tuple[torch.Tensor, torch.Tensor] | None = None,
    **settings,
) -> torch.Tensor:
    """One SGD step of every seed, in place, group after group: `seed_group_step` on each group's slices of
    the stacked tensors, with the same settings (lr, momentum, loss, reg, step, pixel_range). x: (S, B, ...)
    and y: (S, B), each seed's own batch; presented: two (S, B) tensors (views) for each presentation's
    record. Returns (S, 2), what a training loop reports for the batch per seed."""
    report = torch.empty((y.shape[0], 2), device=y.device)
    seeds = list(seeds)
    for g in groups:
        report[g] = seed_group_step(
            arch, seed_slices(params, g), seed_slices(buffers, g), seed_slices(velocity, g), x[g], y[g],
            seeds=seeds[g], presented=None if presented is None else (presented[0][g], presented[1][g]),
            **settings,
        )  # fmt: skip
    return report


def seed_group_step(
    arch: Arch,
    params,
    buffers,
    velocity,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float,
    momentum: float,
    loss: str = "cross_entropy",
    reg: Regularizer = NO_REG,
    seeds=(),
    step: int = 0,
    pixel_range: float = 1.0,
    presented: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """One SGD step of a group of seeds, in place: params, buffers and velocity are the group's (G, ...)
    tensors (views into the stacked seeds), x (G, B, ...) and y (G, B) its seeds' batches. seeds and step
    pick the random draws of a stochastic regulariser; pixel_range converts the LASS settings of adversarial
    training from the 0–255 scale. presented: two (G, B) tensors (views) that receive what the training
    forward pass made of each presented example, whether it was classified as labelled and its margin
    (`margins`): the per-presentation record of the example scores (memorization.measures.scores).

    Returns what a training loop reports for the batch, per seed: (G, 2) = (mean loss, accuracy) of the
    training forward pass (train mode, regulariser active; for adversarial training the mixed loss and the
    accuracy on the clean examples)."""
    seeds = list(seeds)
    noise = layer_noise(reg, seeds, step, x.device)
    if reg.adversarial:
        losses_of = partial(
            adversarial_losses, arch, buffers=buffers, x=x, y=y, reg=reg, seeds=seeds, step=step,
            pixel_range=pixel_range, loss=loss, noise=noise,
        )  # fmt: skip
        grads, losses, logits, new_buffers = by_autograd(params, losses_of)
    else:
        grads, losses, logits, new_buffers = loss_gradients(arch, params, buffers, x, y, loss, noise)
    with torch.no_grad():
        sgd_step(params, grads, velocity, lr=lr, momentum=momentum, weight_decay=reg.weight_decay, inplace=True)
        for k, v in new_buffers.items():
            buffers[k].copy_(v)
        correct = logits.argmax(-1) == y
        if presented is not None:
            presented[0].copy_(correct)
            presented[1].copy_(margins(logits, y))
        return torch.stack([losses.mean(1), correct.float().mean(1)], 1)


def adversarial_losses(
    arch: Arch, params, buffers, x, y, reg: Regularizer, seeds, step: int, pixel_range: float, loss: str, noise
):
    """Per-example losses (S, B), the clean examples' logits and BatchNorm buffers of adversarial training
    (docs/science.md §5, footnote 7): LASS — the same search as the CSR metric, on the deterministic network —
    looks for a critical point x̂ near each batch example; one training forward pass over [x; x̂] (BatchNorm
    statistics over both) gives ℓ(x) and ℓ(x̂), mixed by `adversarial_mix`. LASS runs per seed: its active
    set shrinks example by example."""
    S, B = y.shape
    x_hat, critical = torch.empty_like(x), torch.zeros((S, B), dtype=torch.bool, device=x.device)
    for pos, seed in enumerate(seeds):
        p = {k: v[pos : pos + 1].detach() for k, v in params.items()}
        b = {k: v[pos : pos + 1] for k, v in buffers.items()}

        def predict(xb, p=p, b=b):
            return forward(arch, p, b, xb, train=False)[0][0]

        found = lass(
            predict,
            x[pos],
            alpha=to_input_units(reg.adversarial_alpha, pixel_range),
            beta=to_input_units(reg.adversarial_beta, pixel_range),
            r=to_input_units(reg.adversarial_r, pixel_range),
            max_iter=reg.adversarial_max_iter,
            seed=seed_for(seed, "adversarial", step),
        )
        x_hat[pos], critical[pos] = found.x_hat, found.critical
    logits, new_buffers = forward(arch, params, buffers, torch.cat([x, x_hat], 1), train=True, noise=noise)
    both = example_losses(logits, torch.cat([y, y], 1), loss)
    mixed = adversarial_mix(both[:, :B], both[:, B:], critical, reg.adversarial_weight)
    return mixed, logits[:, :B], new_buffers


# ----------------------------------------------------------------------------- state


def load_state(path: str | os.PathLike, device="cpu") -> dict:
    """A checkpoint or resume state: tensors and plain values only, loaded with weights_only=True (a file
    that is not one is a files.DamagedFile naming it and the fix). A run without momentum writes no velocity
    (train.save_state): it is zero."""
    state = load_checkpoint(path, device)
    if not state.get("velocity"):
        state["velocity"] = {k: torch.zeros_like(v) for k, v in state["params"].items()}
    return state


def initial_state(arch: Arch, seeds: list[int], device) -> tuple[dict, dict, dict]:
    """(params, buffers, velocity) at step 0: a function of the seeds alone, identical on every device."""
    params, buffers = init_params(arch, seeds)
    params = {k: v.to(device) for k, v in params.items()}
    buffers = {k: v.to(device) for k, v in buffers.items()}
    return params, buffers, {k: torch.zeros_like(v) for k, v in params.items()}
