"""Training: all seeds of one configuration at once, the data set resident on the device, no DataLoader.

The random streams are stateless (a generator per (seed, purpose, epoch)), so a run resumes mid-epoch
from a saved state and gives exactly what an uninterrupted run gives, and any step can be replayed.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .data import NoisyDataset
from .models import Arch, forward, init_params, per_seed_loss, seed_for
from .spec import schedule_steps

EVAL_BATCH = 2048


# ----------------------------------------------------------------------------- the one SGD step


def sgd_step(params: dict, grads: dict, velocity: dict, *, lr: float, momentum: float, weight_decay: float):
    """One SGD update with PyTorch's semantics (v ← μ·v + g + λ·w; w ← w − lr·v), out of place and pure.

    This is the only place parameters change. Training calls it under no_grad; the differentiable replay
    of loss sensitivity calls the same function with the graph kept.
    """
    new_params, new_velocity = {}, {}
    for name, w in params.items():
        g = grads[name] + weight_decay * w if weight_decay else grads[name]
        v = momentum * velocity[name] + g if momentum else g
        new_params[name], new_velocity[name] = w - lr * v, v
    return new_params, new_velocity


# ----------------------------------------------------------------------------- schedule


@dataclass(frozen=True)
class Plan:
    """How many steps, which batch at each step, when to evaluate and checkpoint."""

    n_train: int
    batch_size: int
    sampling: str
    steps_per_epoch: int
    total_steps: int
    eval_steps: tuple[int, ...]
    checkpoint_steps: tuple[int, ...]

    @classmethod
    def from_spec(cls, spec: dict, n_train: int) -> "Plan":
        spe = math.ceil(n_train / spec["batch_size"])
        total = spec["steps"] if spec["steps"] is not None else spec["epochs"] * spe
        evals = schedule_steps({"unit": "epoch", "every": spec["log_every"]}, steps_per_epoch=spe, total_steps=total)
        ckpts = schedule_steps(spec["checkpoints"], steps_per_epoch=spe, total_steps=total)
        return cls(n_train, spec["batch_size"], spec["sampling"], spe, total, tuple(evals), tuple(ckpts))

    def epoch_order(self, seeds: list[int], epoch: int) -> torch.Tensor:
        """(S, steps_per_epoch * batch) example indices of one epoch, for every seed."""
        rows = []
        for seed in seeds:
            gen = torch.Generator().manual_seed(seed_for(seed, "batches", epoch))
            if self.sampling == "shuffle":
                rows.append(torch.randperm(self.n_train, generator=gen))
            else:
                rows.append(torch.randint(self.n_train, (self.steps_per_epoch * self.batch_size,), generator=gen))
        return torch.stack(rows)

    def batch(self, order: torch.Tensor, step: int) -> torch.Tensor:
        """Indices (S, B) of the batch at global step `step` (the last batch of an epoch may be smaller)."""
        i = step % self.steps_per_epoch
        return order[:, i * self.batch_size : (i + 1) * self.batch_size]


def learning_rate(spec: dict, epoch: int) -> float:
    """Step schedule lr · factor^⌊epoch / every⌋ (the paper's CNN halves it every 15 epochs)."""
    if spec["lr_decay_every"] is None:
        return spec["lr"]
    return spec["lr"] * spec["lr_decay_factor"] ** (epoch // spec["lr_decay_every"])


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(arch: Arch, params, buffers, x: torch.Tensor, y: torch.Tensor):
    """Eval-mode per-example loss and correctness of every seed's model: two (S, N) tensors."""
    losses, correct = [], []
    for i in range(0, len(x), EVAL_BATCH):
        logits, _ = forward(arch, params, buffers, x[i : i + EVAL_BATCH], train=False)
        yb = y[i : i + EVAL_BATCH].expand(logits.shape[0], -1)
        losses.append(torch.nn.functional.cross_entropy(logits.transpose(1, 2), yb, reduction="none"))
        correct.append(logits.argmax(-1) == yb)
    S = next(iter(params.values())).shape[0]
    if not losses:
        return torch.full((S, 0), float("nan")), torch.zeros((S, 0), dtype=torch.bool)
    return torch.cat(losses, 1), torch.cat(correct, 1)


# ----------------------------------------------------------------------------- state on disk


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_state(path: str | os.PathLike, device="cpu") -> dict:
    """A checkpoint or resume state: tensors and plain values only, loaded with weights_only=True."""
    return torch.load(path, map_location=device, weights_only=True)


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:09d}.pt"


def eval_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "evals" / f"step_{step:09d}.npz"


# ----------------------------------------------------------------------------- the loop


def train_run(spec: dict, data: NoisyDataset, run_dir: str | os.PathLike, *, device: torch.device | str = "cpu",
              progress: bool = True) -> None:
    """Train every seed of `spec` on `data`; write evaluations and checkpoints under `run_dir`.

    Resumable: a `state.pt` is written at every evaluation and checkpoint; a later call with the same
    arguments continues from it. It is removed when the run completes.
    """
    run_dir = Path(run_dir)
    for sub in ("checkpoints", "evals"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    seeds = list(spec["seeds"])
    x_train = torch.as_tensor(data.x_train, device=device)
    y_train = torch.as_tensor(data.y_train, device=device)
    x_val = torch.as_tensor(data.x_val, device=device)
    y_val = torch.as_tensor(data.y_val, device=device)
    arch = Arch.from_spec(spec, data.x_train.shape[1:], data.n_classes)
    plan = Plan.from_spec(spec, len(x_train))
    fingerprint = json.dumps(spec, sort_keys=True)

    state_file = run_dir / "state.pt"
    state = load_state(state_file, device) if state_file.exists() else None
    if state is not None and state["spec"] != fingerprint:
        state = None  # left by another spec or code path: start over rather than mix
    if state is None:
        params, buffers = init_params(arch, seeds)
        params = {k: v.to(device) for k, v in params.items()}
        buffers = {k: v.to(device) for k, v in buffers.items()}
        velocity = {k: torch.zeros_like(v) for k, v in params.items()}
        step = 0
    else:
        params, buffers, velocity, step = state["params"], state["buffers"], state["velocity"], state["step"]
        print(f"resuming run {run_dir.name} from step {step} of {plan.total_steps}", file=sys.stderr, flush=True)

    def save_state(path: Path) -> None:
        _atomic_save({"spec": fingerprint, "step": step, "params": params, "buffers": buffers,
                      "velocity": velocity}, path)

    def record(step: int) -> None:
        if step in plan.eval_steps:
            tr_loss, tr_correct = evaluate(arch, params, buffers, x_train, y_train)
            va_loss, va_correct = evaluate(arch, params, buffers, x_val, y_val)
            tmp = eval_path(run_dir, step).with_suffix(".tmp.npz")
            np.savez(tmp, train_loss=tr_loss.mean(1).cpu().numpy(), train_acc=tr_correct.float().mean(1).cpu().numpy(),
                     val_loss=va_loss.mean(1).cpu().numpy(), val_acc=va_correct.float().mean(1).cpu().numpy(),
                     correct=tr_correct.cpu().numpy())
            os.replace(tmp, eval_path(run_dir, step))
        if step in plan.checkpoint_steps:
            save_state(checkpoint_path(run_dir, step))
        if step in plan.eval_steps or step in plan.checkpoint_steps:
            save_state(state_file)

    if step == 0:
        record(0)
    order_epoch, order = None, None
    bar = tqdm(total=plan.total_steps, initial=step, desc=f"train {run_dir.name}", unit="step",
               file=sys.stderr, mininterval=2.0, disable=not progress)
    while step < plan.total_steps:
        epoch = step // plan.steps_per_epoch
        if epoch != order_epoch:
            order, order_epoch = plan.epoch_order(seeds, epoch).to(device), epoch
        idx = plan.batch(order, step)
        params = {k: v.requires_grad_(True) for k, v in params.items()}
        logits, buffers = forward(arch, params, buffers, x_train[idx], train=True)
        loss = per_seed_loss(logits, y_train[idx]).sum()
        grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
        with torch.no_grad():
            params, velocity = sgd_step({k: v.detach() for k, v in params.items()}, grads, velocity,
                                        lr=learning_rate(spec, epoch), momentum=spec["momentum"],
                                        weight_decay=spec["weight_decay"])
        step += 1
        bar.update(1)
        record(step)
    bar.close()
    state_file.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- results of a run


def run_tables(spec: dict, data: NoisyDataset, run_dir: str | os.PathLike):
    """(training rows, examples rows) of a finished run as pandas DataFrames, from its evaluations."""
    import pandas as pd

    run_dir = Path(run_dir)
    plan = Plan.from_spec(spec, len(data.y_train))
    seeds = np.asarray(spec["seeds"])
    training, examples = [], []
    for step in plan.eval_steps:
        with np.load(eval_path(run_dir, step), allow_pickle=False) as ev:
            epoch = step / plan.steps_per_epoch
            training.append(pd.DataFrame({
                "seed": seeds, "train_size": plan.n_train, "epoch": epoch, "step": step,
                "train_loss": ev["train_loss"], "train_acc": ev["train_acc"],
                "val_loss": ev["val_loss"], "val_acc": ev["val_acc"],
            }))
            correct = ev["correct"]
            n = correct.shape[1]
            examples.append(pd.DataFrame({
                "seed": np.repeat(seeds, n), "train_size": plan.n_train, "epoch": epoch, "step": step,
                "example": np.tile(np.arange(n), len(seeds)),
                "correct": correct.reshape(-1), "is_noisy": np.tile(data.is_noisy, len(seeds)),
            }))
    return pd.concat(training, ignore_index=True), pd.concat(examples, ignore_index=True)
