"""A run's timeline: how many SGD steps, which examples each seed's batch holds at every step, when the run
evaluates and checkpoints, and the learning rate of each epoch; and the timeline a finished run actually
followed (a run that stops at fit ends early).

The random streams are stateless (a generator per (seed, purpose, epoch)), so any step's batch can be drawn
again: a resumed run sees the batches an uninterrupted run sees, and the replay of loss sensitivity sees the
batches training saw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..config.spec import subset_size
from ..results.files import DamagedFile, fix_for
from ..results.rundir import end_path, read_end
from .models import seed_for

if TYPE_CHECKING:
    from ..config import RunSpec


def steps_at(times: dict, *, steps_per_epoch: int, total_steps: int) -> list[int]:
    """The steps (counted from 0 = initialisation) that a spec's times name, {unit: epoch|step, every|at|
    log_count: ...} (the `checkpoints` key); the last step is always in."""
    scale = steps_per_epoch if times["unit"] == "epoch" else 1
    if "every" in times:
        points = range(0, total_steps + 1, times["every"] * scale)
    elif "at" in times:
        points = [a * scale for a in times["at"]]
    else:  # log-spaced, as the paper's Fig. 3 x-axis
        points = np.unique(np.round(np.geomspace(1, total_steps, times["log_count"])).astype(int)).tolist()
    return sorted({p for p in points if 0 <= p <= total_steps} | {total_steps})


@dataclass(frozen=True)
class Timeline:
    """How many steps, which batch at each step, when to evaluate and checkpoint. With a subset_fraction below
    1 each seed draws its batches from its own subset of the training set (`subset`), and an epoch is a pass
    over the subset."""

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
    def from_spec(cls, spec: RunSpec, n_train: int) -> Timeline:
        fraction = spec.subset_fraction
        spe = math.ceil(subset_size(n_train, fraction) / spec.batch_size)
        total = spec.steps if spec.steps is not None else spec.epochs * spe
        evals = steps_at({"unit": "epoch", "every": spec.log_every}, steps_per_epoch=spe, total_steps=total)
        ckpts = steps_at(spec.checkpoints, steps_per_epoch=spe, total_steps=total)
        return cls(n_train, spec.batch_size, spec.sampling, spe, total, tuple(evals), tuple(ckpts), total, fraction)

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

    def ended_at(self, step: int) -> Timeline:
        """The timeline of a run that stopped early at `step` (converged): later evaluations and checkpoints
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


def learning_rate(spec: RunSpec, epoch: int) -> float:
    """The rate decayed in steps, lr · factor^⌊epoch / every⌋ (the paper's CNN halves it every 15 epochs)."""
    if spec.lr_decay_every is None:
        return spec.lr
    return spec.lr * spec.lr_decay_factor ** (epoch // spec.lr_decay_every)


def completed_timeline(spec: RunSpec, n_train: int, run_dir) -> Timeline:
    """The timeline a finished run actually followed (it may have stopped at fit: end.json says where)."""
    timeline, end = Timeline.from_spec(spec, n_train), read_end(run_dir)
    if end is None:
        raise DamagedFile(f"{end_path(run_dir)} is missing or unreadable: run {Path(run_dir).name} has not finished "
                          f"training; {fix_for(end_path(run_dir))}")  # fmt: skip
    return timeline if end["step"] == timeline.total_steps else timeline.ended_at(end["step"])
