"""The tables of one run, all seeds at once, as tidy frames (without identity columns: the table stage adds
them): the training job's tables from its evaluations, and one function per metric table, each taking the
run's spec, its data set, its directory (checkpoints, evaluations) and the table's settings. Beside each
metric, its cost model for the plan (catalog.Table.cost)."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..catalog import SENSITIVITY_SETTINGS
from ..engine.data import NoisyDataset
from ..engine.lass import csr
from ..engine.models import Arch, forward
from ..engine.sgd import load_state
from ..engine.timeline import Timeline, completed_timeline
from ..results.files import read_npz
from ..results.rundir import checkpoint_path, eval_path
from .sensitivity import class_sensitivity, loss_sensitivity, window_steps

if TYPE_CHECKING:
    from ..config import RunSpec


def select_checkpoints(steps, which="all", skip_initial: bool = False) -> list[int]:
    """Of a run's checkpoint steps: all, the last, or those of a list of steps (others are skipped)."""
    steps = [s for s in steps if s > 0] if skip_initial else list(steps)
    if which == "last":
        return steps[-1:]
    return steps if which == "all" else [s for s in steps if s in set(which)]


def _checkpoints(spec: RunSpec, n_train: int, run_dir, which="all", skip_initial: bool = False) -> list[int]:
    """The checkpoint steps a finished run has, selected."""
    return select_checkpoints(completed_timeline(spec, n_train, run_dir).checkpoint_steps, which, skip_initial)


def _progress(items, desc):
    return tqdm(items, desc=desc, file=sys.stderr, mininterval=2.0, ascii=True)


def _sensitivity_keys() -> tuple[str, ...]:
    """The settings every sensitivity row carries (the catalog's columns)."""
    return tuple(c.name for c in SENSITIVITY_SETTINGS)


def _replay_settings(settings: dict) -> dict:
    return {k: settings[k] for k in (*_sensitivity_keys(), "chunk")}


def sensitivity_frame(spec: RunSpec, data: NoisyDataset, run_dir, settings: dict, device="cpu") -> pd.DataFrame:
    """ḡ_x of every training example at every checkpoint (after the first step), per seed."""
    x = torch.as_tensor(data.x_train, device=device)
    y = torch.as_tensor(data.y_train, device=device)
    seeds, n = np.asarray(spec.seeds), len(y)
    frames = []
    for step in _progress(_checkpoints(spec, n, run_dir, settings["at"], skip_initial=True), "loss sensitivity"):
        g = loss_sensitivity(spec, x, y, data.n_classes, step, run_dir=run_dir, **_replay_settings(settings))
        rows = {
            "seed": np.repeat(seeds, n),
            "step": step,
            "example": np.tile(np.arange(n), len(seeds)),
            "sensitivity": g.detach().cpu().numpy().reshape(-1).astype(np.float64),
            "is_noisy": np.tile(data.is_noisy, len(seeds)),
        }
        frames.append(pd.DataFrame(rows))
    return _with_settings(pd.concat(frames, ignore_index=True), settings, _sensitivity_keys())


def class_sensitivity_frame(spec: RunSpec, data: NoisyDataset, run_dir, settings: dict, device="cpu") -> pd.DataFrame:
    """ḡ_{i,j} per seed and checkpoint: one row per class pair (i: class of the differentiated loss term,
    j: class of the training inputs), by the paper's formula or the authors' code (`variant`)."""
    x = torch.as_tensor(data.x_train, device=device)
    y = torch.as_tensor(data.y_train, device=device)
    C, frames = data.n_classes, []
    if C > 100:
        raise ValueError(
            f"class_sensitivity of a run with {C} classes (identity labels?) would differentiate "
            f"{C} loss terms per step into a {C}x{C} table; remove `class_sensitivity` from the "
            f"`tables:` of experiments whose runs have more than 100 classes"
        )
    for step in _progress(_checkpoints(spec, len(y), run_dir, settings["at"], skip_initial=True), "class sensitivity"):
        variant = settings["variant"]
        m = class_sensitivity(spec, x, y, C, step, run_dir=run_dir, variant=variant, **_replay_settings(settings))
        S = m.shape[0]
        rows = {
            "seed": np.repeat(spec.seeds, C * C),
            "step": step,
            "class_i": np.tile(np.repeat(np.arange(C), C), S),
            "class_j": np.tile(np.arange(C), S * C),
            "value": m.detach().cpu().numpy().reshape(-1).astype(np.float64),
        }
        frames.append(pd.DataFrame(rows))
    return _with_settings(pd.concat(frames, ignore_index=True), settings, (*_sensitivity_keys(), "variant"))


def csr_frame(spec: RunSpec, data: NoisyDataset, run_dir, settings: dict, device="cpu") -> pd.DataFrame:
    """Critical sample ratio by LASS of every seed's model at every checkpoint, on each requested split."""
    arch = Arch.from_spec(spec, data.x_train.shape[1:], data.n_classes)
    timeline = completed_timeline(spec, len(data.y_train), run_dir)
    arrays = {"val": data.x_val, "train": data.x_train}
    # each split goes to the device once, not once per checkpoint and seed
    splits = {name: torch.as_tensor(arrays[name][: settings["points"]], device=device) for name in settings["splits"]}
    rows = []
    for step in _progress(timeline.checkpoint_steps, "critical sample ratio"):
        state = load_state(checkpoint_path(run_dir, step), device)
        for pos, seed in enumerate(spec.seeds):
            params = {k: v[pos : pos + 1] for k, v in state["params"].items()}
            buffers = {k: v[pos : pos + 1] for k, v in state["buffers"].items()}

            def predict(xb, params=params, buffers=buffers):
                return forward(arch, params, buffers, xb, train=False)[0][0]

            for split, x in splits.items():
                if len(x) == 0:
                    continue  # identity labels: no validation task
                out = csr(
                    predict,
                    x,
                    r=settings["r"],
                    alpha=settings["alpha"],
                    beta=settings["beta"],
                    pixel_range=data.pixel_range,
                    max_iter=settings["max_iter"],
                    stop=settings["stop"],
                    global_min_new=settings["global_min_new"],
                    seed=settings["seed"] + 1000 * seed + step,
                )
                rows.append(
                    {"seed": seed, "epoch": step / timeline.steps_per_epoch, "step": step, "split": split, **out}
                )
    return pd.DataFrame(rows)


def csr_board(frame: pd.DataFrame):
    """The critical sample ratio per seed at each checkpoint, one curve per split, for the run's TensorBoard
    (results.events)."""
    from ..results.events import scalars_by_step

    return scalars_by_step(frame, "csr", "critical sample ratio/{}", by="split")


def filters_frame(spec: RunSpec, data: NoisyDataset, run_dir, settings: dict, device="cpu") -> pd.DataFrame:
    """First-layer weights of every seed at the first and the last checkpoint (the paper's Fig. 2), one row per
    weight: the CNN's 5x5 filters, or the MLP's first-layer units as images of the input's shape.
    `settings` is unused: the table has none."""
    steps = _checkpoints(spec, len(data.y_train), run_dir)
    frames = []
    for step in sorted({steps[0], steps[-1]}):
        params = load_state(checkpoint_path(run_dir, step))["params"]
        if spec.arch == "cnn":
            w = params["conv0.weight"]  # (S, filters, C, 5, 5)
        else:  # (S, inputs, units) → (S, units, C, H, W)
            w = params["fc0.weight"].transpose(1, 2).reshape(len(spec.seeds), -1, *data.x_train.shape[1:])
        S, F, C, H, W = w.shape
        grid = np.indices((S, F, C, H, W)).reshape(5, -1)
        frames.append(
            pd.DataFrame(
                {
                    "seed": np.asarray(spec.seeds)[grid[0]],
                    "step": step,
                    "filter": grid[1],
                    "channel": grid[2],
                    "row": grid[3],
                    "col": grid[4],
                    "value": w.reshape(-1).double().numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- cost models (memorization.pipeline.plan)
# Each: (spec, settings, timings of the run's model shape, the run's shape) -> seconds of computation, the
# job's start not counted; `shape` has the planned `timeline`, `classes`, `n_train` and `n_val`.


def _replay_cost(settings: dict, t: dict, shape, outputs_per_step: int) -> float:
    """Per checkpoint T: T replayed steps (or horizon + window), each taken once to store the states, then per
    pass (a chunk of outputs) stepped again and swept back, plus a cost per output and replayed step (one row
    serves every seed; an upper bound: a row starts at its own step)."""
    seconds = 0.0
    for T in select_checkpoints(shape.timeline.checkpoint_steps, settings["at"], skip_initial=True):
        replayed = T if settings["horizon"] is None else min(T, settings["horizon"] + settings["window"])
        outputs = len(window_steps(T, settings["window"], settings["stride"])) * outputs_per_step
        passes = math.ceil(outputs / settings["chunk"])
        seconds += replayed * (
            t.get("step", math.nan)
            + passes * t.get("backward_pass_step", math.nan)
            + outputs * t.get("backward_output_step", math.nan)
        )
    return seconds


def sensitivity_cost(spec: RunSpec, settings: dict, t: dict, shape) -> float:
    return _replay_cost(settings, t, shape, 1)


def class_sensitivity_cost(spec: RunSpec, settings: dict, t: dict, shape) -> float:
    return _replay_cost(settings, t, shape, shape.classes)


def csr_cost(spec: RunSpec, settings: dict, t: dict, shape) -> float:
    """Checkpoints x seeds x points x the iteration cap (an upper bound: a flipped point stops early)."""
    sizes = {"val": shape.n_val, "train": shape.n_train}
    points = sum(min(settings["points"] or sizes[s], sizes[s]) for s in settings["splits"])
    return (
        len(shape.timeline.checkpoint_steps)
        * len(spec.seeds)
        * points
        * settings["max_iter"]
        * t["lass_point_iteration"]
    )


def _with_settings(frame: pd.DataFrame, settings: dict, keys) -> pd.DataFrame:
    """Every metric row carries the settings that produced it."""
    return frame.assign(**{k: settings[k] for k in keys})


# ----------------------------------------------------------------------------- the training job's tables


def _evaluations(spec: RunSpec, data: NoisyDataset, run_dir):
    """(timeline, epoch, step, evaluation arrays) for every evaluation of a finished run."""
    timeline = completed_timeline(spec, len(data.y_train), run_dir)
    for step in timeline.eval_steps:
        yield timeline, step / timeline.steps_per_epoch, step, read_npz(eval_path(run_dir, step))


def run_tables(spec: RunSpec, data: NoisyDataset, run_dir: str | os.PathLike):
    """(training rows, convergence rows) of a finished run as pandas DataFrames, from its evaluations."""
    seeds = np.asarray(spec.seeds)
    training = []
    for timeline, epoch, step, ev in _evaluations(spec, data, Path(run_dir)):
        training.append(
            pd.DataFrame(
                {
                    "seed": seeds,
                    "train_size": timeline.n_train,
                    "epoch": epoch,
                    "step": step,
                    "train_loss": ev["train_loss"],
                    "train_acc": ev["train_acc"],
                    "val_loss": ev["val_loss"],
                    "val_acc": ev["val_acc"],
                    "batch_loss": ev["batch_loss"],
                    "batch_acc": ev["batch_acc"],
                }
            )
        )
    training = pd.concat(training, ignore_index=True)
    return training, convergence_frame(training, timeline)


def examples_frame(
    spec: RunSpec, data: NoisyDataset, run_dir: str | os.PathLike, settings: dict | None = None, device="cpu"
):
    """Per-example correctness rows of a finished run (seeds x evaluations x training examples), from its
    evaluation files. A table of its own, made only for experiments that ask for it: at paper scale (50k
    examples, 1000 epochs) it has 10^8 rows per run. (settings and device: the metric signature; unused.)"""
    seeds = np.asarray(spec.seeds)
    frames = []
    for timeline, epoch, step, ev in _evaluations(spec, data, Path(run_dir)):
        correct = ev["correct"]
        n = correct.shape[1]
        frames.append(
            pd.DataFrame(
                {
                    "seed": np.repeat(seeds, n),
                    "train_size": timeline.n_train,
                    "epoch": epoch,
                    "step": step,
                    "example": np.tile(np.arange(n), len(seeds)),
                    "correct": correct.reshape(-1),
                    "is_noisy": np.tile(data.is_noisy, len(seeds)),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def convergence_frame(training, timeline: Timeline):
    """Time to convergence (docs/science.md §3.6) per seed: the first logged epoch at which the seed classifies its
    whole training set (as trained) correctly; null if it never did within the cap `max_epochs`."""
    fit = training[training["train_acc"] == 1.0].groupby("seed")["epoch"].min()
    seeds = training["seed"].unique()
    return pd.DataFrame(
        {
            "seed": seeds,
            "train_size": timeline.n_train,
            "epochs_to_fit": pd.array([fit.get(s, None) for s in seeds], dtype="Float64"),
            "max_epochs": timeline.planned_epochs(),
        }
    )
