"""A run's TensorBoard event files, written while it trains and as its metric tables are computed, for
`memorization board` (TensorBoard) to show live:

    results/runs/<run_id>/tensorboard/mean/     seed means (and "std over seeds/…" their spread) of every value,
                                                the run's settings as TensorBoard hparams
    results/runs/<run_id>/tensorboard/seed_<k>/ the same values of seed k alone

Written with PyTorch's own writer (torch.utils.tensorboard, TensorBoard's event format); each process writes
its own event file, so a training job and the metric jobs of one run never write the same file. No job reads
them and no run's manifest or end.json hashes them: turning them off (`tensorboard: false`) or deleting them
changes no table.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BOARD = "tensorboard"
SPREAD = "std over seeds"  # the group of the spreads' tags: "std over seeds/accuracy/validation"
FLUSH_EVERY_S = 2.0  # event files reach the disk at most this often (TensorBoard itself reloads every 5 s)

# An evaluation's values (engine.train.write_evaluation's arrays) and their TensorBoard tags.
EVALUATION_TAGS = {
    "train_loss": "loss/train",
    "val_loss": "loss/validation",
    "batch_loss": "loss/train batches (train mode)",
    "train_acc": "accuracy/train",
    "val_acc": "accuracy/validation",
    "batch_acc": "accuracy/train batches (train mode)",
}


@dataclass(frozen=True)
class BoardValue:
    """One value of a metric table to show in TensorBoard (catalog.Table.board): a scalar, one value per seed
    (values: (seeds,)), or a histogram, one distribution per seed (values: (seeds, items)); at a step, or at
    the run's last step (None)."""

    kind: str  # "scalar" | "histogram"
    tag: str
    step: int | None
    values: dict  # seed -> its value (a scalar) or its values (a histogram)


def scalars_by_step(frame, column: str, tag: str, by: str | None = None) -> list[BoardValue]:
    """The BoardValues of one column of a table with a row per seed and step (and per `by`, whose value is put
    in the tag: tag.format(value))."""
    keys = ["step"] if by is None else ["step", by]
    return [
        BoardValue("scalar", tag.format(*key[1:]), int(key[0]), dict(zip(g["seed"], g[column])))
        for key, g in frame.groupby(keys, sort=True)
    ]


def board_dir(run_dir) -> Path:
    return Path(run_dir) / BOARD


def mean_dir(run_dir) -> Path:
    return board_dir(run_dir) / "mean"


def seed_dir(run_dir, seed: int) -> Path:
    return board_dir(run_dir) / f"seed_{seed}"


def hparams_of(spec: dict, label: str = "") -> dict:
    """A run's settings as TensorBoard hparams: every spec key that has a value (lists and mappings as JSON
    text; a key without one is left out rather than shown as a type of its own), and its label (its
    experiments and what sets it apart in each, config.Config.labels)."""
    out = {"label": label} if label else {}
    for key, value in sorted(spec.items()):
        if value is None:
            continue
        if isinstance(value, (list, tuple, dict)):
            value = json.dumps(value, sort_keys=True)
        out[key] = value
    return out


class RunBoard:
    """The event files one process writes for one run: `scalars` and `histograms` of per-seed values at a
    step go to each seed's folder and, as the mean and the spread over seeds, to the run's own.

    purge_step: a resumed run's first step: what an earlier, interrupted process wrote from there on is
    hidden by TensorBoard (its purge event), so a resumed curve has each step once. hparams: the run's
    settings, written once (`hparams`).
    """

    def __init__(self, run_dir, seeds, *, purge_step: int | None = None, hparams: dict | None = None):
        from torch.utils.tensorboard import SummaryWriter  # PyTorch's writer of TensorBoard's format

        self.seeds = list(seeds)
        # no background flushing: `flush` writes at the job's own pace (each logged evaluation)
        opts = {"purge_step": purge_step, "max_queue": 10_000, "flush_secs": 10_000}
        self.run = SummaryWriter(mean_dir(run_dir), **opts)
        self.each = [SummaryWriter(seed_dir(run_dir, s), **opts) for s in self.seeds]
        self.flushed_at = time.monotonic()
        if hparams is not None:
            self.hparams(hparams)

    def hparams(self, values: dict) -> None:
        """The run's settings, which TensorBoard's HParams view lists and compares runs by (its metrics are
        the run's scalars, found by TensorBoard)."""
        from torch.utils.tensorboard.summary import hparams

        _, start, _ = hparams(values, {})
        self.run.file_writer.add_summary(start)

    def scalars(self, step: int, values: dict[str, np.ndarray]) -> None:
        """{tag: one value per seed} at `step`; NaN values (nothing to measure yet) are left out. One event per
        folder holds all the step's values, rather than an event per value (SummaryWriter.add_scalar): dozens
        per evaluation otherwise."""
        per_seed = {tag: np.asarray(v, dtype=np.float64) for tag, v in values.items()}
        for i, writer in enumerate(self.each):
            self._write(writer, step, {tag: v[i] for tag, v in per_seed.items()})
        over_seeds = {}
        for tag, v in per_seed.items():
            finite = v[np.isfinite(v)]
            if finite.size:
                over_seeds[tag] = finite.mean()
                if len(self.seeds) > 1:
                    over_seeds[f"{SPREAD}/{tag}"] = finite.std()
        self._write(self.run, step, over_seeds)

    @staticmethod
    def _write(writer, step: int, values: dict[str, float]) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        found = [Summary.Value(tag=tag, simple_value=float(v)) for tag, v in values.items() if math.isfinite(v)]
        if found:
            writer.file_writer.add_summary(Summary(value=found), step)

    def histograms(self, step: int, values: dict[str, list]) -> None:
        """{tag: one array of values per seed} at `step`: each seed's distribution, and all seeds' together."""
        for tag, per_seed in values.items():
            rows = [np.asarray(row, dtype=np.float64) for row in per_seed]
            rows = [row[np.isfinite(row)] for row in rows]
            for writer, row in zip(self.each, rows):
                if row.size:
                    writer.add_histogram(tag, row, step)
            pooled = np.concatenate(rows) if rows else np.empty(0)
            if pooled.size:
                self.run.add_histogram(tag, pooled, step)

    def evaluation(self, step: int, values: dict[str, np.ndarray], lr: float, last: bool = False) -> None:
        """An evaluation of the training loop: its losses and accuracies per seed (the `training` table's
        columns, EVALUATION_TAGS) and the learning rate of the steps that follow; on disk within FLUSH_EVERY_S,
        at once if it is the `last`."""
        self.scalars(step, {tag: values[name] for name, tag in EVALUATION_TAGS.items()})
        self._write(self.run, step, {"learning rate": lr})
        self.flush(force=last)

    def values(self, values, last_step: int) -> None:
        """A metric table's values (BoardValue), those without a step at the run's last step."""
        for v in values:
            step = last_step if v.step is None else int(v.step)
            if v.kind == "scalar":
                self.scalars(step, {v.tag: [v.values.get(s, np.nan) for s in self.seeds]})
            else:
                self.histograms(step, {v.tag: [v.values.get(s, ()) for s in self.seeds]})

    def flush(self, force: bool = False) -> None:
        """Write what is queued, when FLUSH_EVERY_S have passed since the last time (or `force`)."""
        if not force and time.monotonic() - self.flushed_at < FLUSH_EVERY_S:
            return
        for writer in (self.run, *self.each):
            writer.flush()
        self.flushed_at = time.monotonic()

    def close(self) -> None:
        for writer in (self.run, *self.each):
            writer.close()

    def __enter__(self) -> RunBoard:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
