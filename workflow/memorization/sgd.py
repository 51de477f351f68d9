"""The SGD core that training and the differentiable replay of loss sensitivity share: the step schedule,
the one SGD update, the batched training step of every seed, evaluation, the initial state, seed groups.

The random streams are stateless (a generator per (seed, purpose, epoch)), so any step can be replayed: a
resumed run gives exactly what an uninterrupted run gives, and the replay sees the batches training saw.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .architecture import params_per_model
from .backprop import OuterProduct, by_autograd, dense_gradients, loss_gradients
from .files import load_checkpoint
from .lass import lass, to_input_units
from .memory import EVAL_BATCH, EVAL_GROUP_PARAMS, seed_groups
from .models import Arch, example_losses, forward, init_params, seed_for
from .regularizers import NONE as NO_REG
from .regularizers import Regularizer, adversarial_mix, layer_noise
from .rundir import end_path


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
    through_gradient(a) adds (∂g/∂w)ᵀa to lam_params (the loss's curvature, memorization.curvature) and takes
    whatever else it needs of a (its inputs' part); a is only valid during that call."""
    names = list(lam_params)
    lw, a = [lam_params[k] for k in names], [lam_velocity[k] for k in names]
    torch._foreach_sub_(a, lw, alpha=lr)
    if weight_decay:
        decayed = [i for i, k in enumerate(names) if decays(k)]
        torch._foreach_add_([lw[i] for i in decayed], [a[i] for i in decayed], alpha=weight_decay)
    through_gradient(dict(zip(names, a)))
    torch._foreach_mul_(a, momentum)


# ----------------------------------------------------------------------------- schedule


def schedule_steps(schedule: dict, *, steps_per_epoch: int, total_steps: int) -> list[int]:
    """Steps (counted from 0 = initialisation) at which a schedule fires; the last step is always in."""
    scale = steps_per_epoch if schedule["unit"] == "epoch" else 1
    if "every" in schedule:
        points = range(0, total_steps + 1, schedule["every"] * scale)
    elif "at" in schedule:
        points = [a * scale for a in schedule["at"]]
    else:  # log-spaced, as the paper's Fig. 3 x-axis
        points = np.unique(np.round(np.geomspace(1, total_steps, schedule["log_count"])).astype(int)).tolist()
    return sorted({p for p in points if 0 <= p <= total_steps} | {total_steps})


@dataclass(frozen=True)
class Schedule:
    """A run's timeline: how many steps, which batch at each step, when to evaluate and checkpoint. With a
    subset_fraction below 1 each seed draws its batches from its own subset of the training set (`subset`),
    and an epoch is a pass over the subset."""

    n_train: int
    batch_size: int
    sampling: str
    steps_per_epoch: int
    total_steps: int
    eval_steps: tuple[int, ...]
    checkpoint_steps: tuple[int, ...]
    planned_steps: int = 0  # total_steps as planned, before an early stop
    subset_fraction: float = 1.0

    @classmethod
    def from_spec(cls, spec: dict, n_train: int) -> Schedule:
        fraction = spec.get("subset_fraction", 1.0)
        spe = math.ceil(subset_size(n_train, fraction) / spec["batch_size"])
        total = spec["steps"] if spec["steps"] is not None else spec["epochs"] * spe
        evals = schedule_steps({"unit": "epoch", "every": spec["log_every"]}, steps_per_epoch=spe, total_steps=total)
        ckpts = schedule_steps(spec["checkpoints"], steps_per_epoch=spe, total_steps=total)
        return cls(
            n_train, spec["batch_size"], spec["sampling"], spe, total, tuple(evals), tuple(ckpts), total, fraction
        )

    def subset(self, seed: int) -> torch.Tensor:
        """The training examples seed `seed` trains on, in increasing order: all of them, or a uniformly random
        subset of subset_fraction of them drawn from the seed alone (as Feldman & Zhang's and Jiang et al.'s
        subset trainings), so that any seed's subset can be drawn again without the run's files."""
        if self.subset_fraction == 1.0:
            return torch.arange(self.n_train)
        gen = torch.Generator().manual_seed(seed_for(seed, "subset"))
        chosen = torch.randperm(self.n_train, generator=gen)[: subset_size(self.n_train, self.subset_fraction)]
        return chosen.sort().values

    def subset_mask(self, seeds: list[int]) -> np.ndarray:
        """(S, n_train) bool: which examples each seed trains on."""
        mask = np.zeros((len(seeds), self.n_train), dtype=bool)
        for row, seed in enumerate(seeds):
            mask[row, self.subset(seed).numpy()] = True
        return mask

    def planned_epochs(self) -> float:
        """The training budget in epochs (the cap of a run that stops at fit)."""
        return self.planned_steps / self.steps_per_epoch

    def ended_at(self, step: int) -> Schedule:
        """The schedule of a run that stopped early at `step` (converged): later evaluations and checkpoints
        never happened, and the stop is both an evaluation and a checkpoint."""
        return replace(
            self,
            total_steps=step,
            eval_steps=tuple(sorted({s for s in self.eval_steps if s < step} | {step})),
            checkpoint_steps=tuple(sorted({s for s in self.checkpoint_steps if s < step} | {step})),
        )

    def epoch_order(self, seeds: list[int], epoch: int) -> torch.Tensor:
        """(S, steps_per_epoch * batch) example indices of one epoch, for every seed."""
        rows, m = [], subset_size(self.n_train, self.subset_fraction)
        for seed in seeds:
            gen = torch.Generator().manual_seed(seed_for(seed, "batches", epoch))
            if self.sampling == "shuffle":
                order = torch.randperm(m, generator=gen)
            else:
                order = torch.randint(m, (self.steps_per_epoch * self.batch_size,), generator=gen)
            rows.append(order if m == self.n_train else self.subset(seed)[order])
        return torch.stack(rows)

    def steps(self, seeds: list[int], start: int, stop: int, device="cpu"):
        """(step, epoch, batch indices (S, B)) for steps start..stop−1, each epoch's order made once."""
        order_epoch, order = None, None
        for step in range(start, stop):
            epoch = step // self.steps_per_epoch
            if epoch != order_epoch:
                order, order_epoch = self.epoch_order(seeds, epoch).to(device), epoch
            yield step, epoch, self.batch(order, step)

    def presentations_per_epoch(self) -> int:
        """Examples presented in one epoch (the length of epoch_order's rows)."""
        if self.sampling == "shuffle":
            return subset_size(self.n_train, self.subset_fraction)
        return self.steps_per_epoch * self.batch_size

    def batch(self, order: torch.Tensor, step: int) -> torch.Tensor:
        """Indices (S, B) of the batch at global step `step` (the last batch of an epoch may be smaller)."""
        i = step % self.steps_per_epoch
        return order[:, i * self.batch_size : (i + 1) * self.batch_size]


def subset_size(n_train: int, fraction: float) -> int:
    """Examples in a seed's training subset: round(fraction · n_train), at least one."""
    return max(1, round(fraction * n_train))


def learning_rate(spec: dict, epoch: int) -> float:
    """Step schedule lr · factor^⌊epoch / every⌋ (the paper's CNN halves it every 15 epochs)."""
    if spec["lr_decay_every"] is None:
        return spec["lr"]
    return spec["lr"] * spec["lr_decay_factor"] ** (epoch // spec["lr_decay_every"])


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
    (`margins`): the per-presentation record of the example scores (memorization.scores).

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


def completed_schedule(spec: dict, n_train: int, run_dir) -> Schedule:
    """The schedule a finished run actually followed (it may have stopped at fit: end.json says where)."""
    schedule = Schedule.from_spec(spec, n_train)
    path = end_path(run_dir)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run {Path(run_dir).name} has not finished training")
    end = json.loads(path.read_text())["step"]
    return schedule if end == schedule.total_steps else schedule.ended_at(end)
