"""One function per workflow job, with plain arguments: the rules' scripts only unpack `snakemake` and
call these, so every stage can also be run and tested without Snakemake."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import torch

from . import devices, figures, tables
from .data import NoisyDataset, build_noisy_dataset
from .train import run_tables, train_run


def make_dataset(spec: dict, out: str, *, data_root: str, download: bool) -> None:
    data = build_noisy_dataset(spec, root=data_root, download=download)
    data.save(out)
    print(f"{out}: {len(data.y_train)} training examples ({int(data.is_noisy.sum())} noisy), "
          f"{len(data.y_val)} validation, {data.n_classes} classes")


def train(spec: dict, dataset: str, *, spec_out: str, training_out: str, examples_out: str,
          device: str = "auto", lock_dir: str = "/tmp/memorization-gpu-leases", threads: int = 1) -> None:
    torch.set_num_threads(max(1, threads))
    run_dir = Path(spec_out).parent
    data = NoisyDataset.load(dataset)
    with devices.lease(device, lock_dir) as dev:
        print(f"training {len(spec['seeds'])} seed(s) of run {run_dir.name} on {dev}", flush=True)
        train_run(spec, data, run_dir, device=dev)
    training, examples = run_tables(spec, data, run_dir)
    for frame, path in ((training, training_out), (examples, examples_out)):
        tmp = f"{path}.tmp"
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    Path(spec_out).write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")


def experiment_table(experiment: str, table: str, run_specs: dict[str, dict], inputs: list[str], out: str) -> None:
    frames = []
    for path in inputs:
        rid = Path(path).parent.name
        frame = pd.read_parquet(path)
        frames.append(tables.with_identity(frame, tables.identity_values(experiment, run_specs[rid])))
    tables.write_table(pd.concat(frames, ignore_index=True), out, table=table, specs=run_specs)


def figure(name: str, inputs: list[str], out_png: str) -> None:
    by_table: dict[str, list[pd.DataFrame]] = {}
    for path in inputs:
        by_table.setdefault(Path(path).stem, []).append(pd.read_parquet(path))
    frames = {t: pd.concat(f, ignore_index=True) for t, f in by_table.items()}
    figures.draw(name, frames, Path(out_png).with_suffix(""))
