"""Checkpoint-wise metric families of one run, all seeds at once, as tidy frames (without identity columns:
the table stage adds them). One function per family; each takes the run's spec, its data set, its
directory (checkpoints) and the family's settings."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .data import NoisyDataset
from .lass import csr
from .models import Arch, forward
from .rundir import checkpoint_path
from .sensitivity import class_sensitivity, loss_sensitivity
from .train import completed_plan, load_state


def _checkpoints(spec: dict, n_train: int, run_dir, which="all", skip_initial: bool = False) -> list[int]:
    """The run's checkpoint steps: all, the last, or those of a list of steps (others are skipped)."""
    steps = list(completed_plan(spec, n_train, run_dir).checkpoint_steps)
    if skip_initial:
        steps = [s for s in steps if s > 0]
    if which == "last":
        return steps[-1:]
    return steps if which == "all" else [s for s in steps if s in set(which)]


def _progress(items, desc):
    return tqdm(items, desc=desc, file=sys.stderr, mininterval=2.0, ascii=True)


SENSITIVITY_KEYS = ("window", "stride", "norm", "horizon")  # the settings every sensitivity row carries


def _replay_settings(settings: dict) -> dict:
    return {k: settings[k] for k in (*SENSITIVITY_KEYS, "chunk")}


def sensitivity_frame(spec: dict, data: NoisyDataset, run_dir, settings: dict, device="cpu") -> pd.DataFrame:
    """ḡ_x of every training example at every checkpoint (after the first step), per seed."""
    x = torch.as_tensor(data.x_train, device=device)
    y = torch.as_tensor(data.y_train, device=device)
    seeds, n = np.asarray(spec["seeds"]), len(y)
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
    return _with_settings(pd.concat(frames, ignore_index=True), settings, SENSITIVITY_KEYS)


def class_sensitivity_frame(spec: dict, data: NoisyDataset, run_dir, settings: dict, device="cpu") -> pd.DataFrame:
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
            "seed": np.repeat(spec["seeds"], C * C),
            "step": step,
            "class_i": np.tile(np.repeat(np.arange(C), C), S),
            "class_j": np.tile(np.arange(C), S * C),
            "value": m.detach().cpu().numpy().reshape(-1).astype(np.float64),
        }
        frames.append(pd.DataFrame(rows))
    return _with_settings(pd.concat(frames, ignore_index=True), settings, (*SENSITIVITY_KEYS, "variant"))


def csr_frame(spec: dict, data: NoisyDataset, run_dir, settings: dict, device="cpu") -> pd.DataFrame:
    """Critical sample ratio by LASS of every seed's model at every checkpoint, on each requested split."""
    arch = Arch.from_spec(spec, data.x_train.shape[1:], data.n_classes)
    plan = completed_plan(spec, len(data.y_train), run_dir)
    arrays = {"val": data.x_val, "train": data.x_train}
    # each split goes to the device once, not once per checkpoint and seed
    splits = {name: torch.as_tensor(arrays[name][: settings["points"]], device=device) for name in settings["splits"]}
    rows = []
    for step in _progress(plan.checkpoint_steps, "critical sample ratio"):
        state = load_state(checkpoint_path(run_dir, step), device)
        for pos, seed in enumerate(spec["seeds"]):
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
                rows.append({"seed": seed, "epoch": step / plan.steps_per_epoch, "step": step, "split": split, **out})
    return pd.DataFrame(rows)


def filters_frame(spec: dict, data: NoisyDataset, run_dir, settings: dict, device="cpu") -> pd.DataFrame:
    """First-layer weights of every seed at the first and the last checkpoint (the paper's Fig. 2), one row per
    weight: the CNN's 5x5 filters, or the MLP's first-layer units as images of the input's shape.
    `settings` is unused: the family has none."""
    steps = _checkpoints(spec, len(data.y_train), run_dir)
    frames = []
    for step in sorted({steps[0], steps[-1]}):
        params = load_state(checkpoint_path(run_dir, step))["params"]
        if spec["arch"] == "cnn":
            w = params["conv0.weight"]  # (S, filters, C, 5, 5)
        else:  # (S, inputs, units) → (S, units, C, H, W)
            w = params["fc0.weight"].transpose(1, 2).reshape(len(spec["seeds"]), -1, *data.x_train.shape[1:])
        S, F, C, H, W = w.shape
        grid = np.indices((S, F, C, H, W)).reshape(5, -1)
        frames.append(
            pd.DataFrame(
                {
                    "seed": np.asarray(spec["seeds"])[grid[0]],
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


def _with_settings(frame: pd.DataFrame, settings: dict, keys) -> pd.DataFrame:
    """Every metric row carries the settings that produced it."""
    return frame.assign(**{k: settings[k] for k in keys})
