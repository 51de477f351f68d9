"""One function per workflow job, with plain arguments: the rules' scripts only unpack `snakemake` and
call these, so every stage can also be run and tested without Snakemake.

Each function imports what it needs itself: a job is a fresh process, and importing torch and matplotlib
into every table or data-set job would cost seconds per job (measured: 4.2 s to import everything; 0.2 s
for the data-set module, 2.5 s of it is torch).
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def clean_dataset(name: str, out: str, *, data_root: str, download: bool) -> None:
    from .data import save_clean

    save_clean(name, out, root=data_root, download=download)
    print(f"{out}: the clean {name} splits")


def make_dataset(spec: dict, clean: str, out: str) -> None:
    from .data import build_noisy_dataset, load_clean_file

    data = build_noisy_dataset(spec, clean=load_clean_file(clean))
    data.save(out)
    print(f"{out}: {len(data.y_train)} training examples ({int(data.is_noisy.sum())} noisy), "
          f"{len(data.y_val)} validation, {data.n_classes} classes")


def train(spec: dict, dataset: str, *, spec_out: str, training_out: str, convergence_out: str,
          device: str = "auto", lock_dir: str = "/tmp/memorization-gpu-leases", threads: int = 1) -> None:
    import torch

    from . import devices
    from .data import NoisyDataset
    from .train import run_tables, train_run

    torch.set_num_threads(max(1, threads))
    run_dir = Path(spec_out).parent
    data = NoisyDataset.load(dataset)
    with devices.lease(device, lock_dir) as dev:
        print(f"training {len(spec['seeds'])} seed(s) of run {run_dir.name} on {dev}", flush=True)
        train_run(spec, data, run_dir, device=dev)
    training, convergence = run_tables(spec, data, run_dir)
    _write_parquet(training, training_out)
    _write_parquet(convergence, convergence_out)
    Path(spec_out).write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")


def examples(spec: dict, dataset: str, run_dir: str, out: str) -> None:
    """The per-example correctness rows of one finished run."""
    from .data import NoisyDataset
    from .train import examples_table

    _write_parquet(examples_table(spec, NoisyDataset.load(dataset), run_dir), out)


def _write_parquet(frame, path: str) -> None:
    tmp = f"{path}.tmp"
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def metric(family: str, spec: dict, dataset: str, run_dir: str, settings: dict, out: str, *, device: str = "auto",
           lock_dir: str = "/tmp/memorization-gpu-leases", threads: int = 1) -> None:
    """One metric family (sensitivity, class_sensitivity, csr, filters) at the checkpoints of one run."""
    import torch

    from . import devices, metrics
    from .data import NoisyDataset

    torch.set_num_threads(max(1, threads))
    data = NoisyDataset.load(dataset)
    compute = {"sensitivity": metrics.sensitivity_frame, "class_sensitivity": metrics.class_sensitivity_frame,
               "csr": metrics.csr_frame, "filters": metrics.filters_frame}[family]
    with devices.lease(device, lock_dir) as dev:
        print(f"{family} of run {Path(run_dir).name} ({len(spec['seeds'])} seeds) on {dev}: {settings}", flush=True)
        frame = compute(spec, data, run_dir, settings, device=dev)
    frame.insert(1, "train_size", len(data.y_train))
    _write_parquet(frame, out)


def gini(sensitivity: str, out: str) -> None:
    import pandas as pd

    from .analysis import gini_frame

    _write_parquet(gini_frame(pd.read_parquet(sensitivity)), out)


def experiment_table(experiment: str, table: str, run_specs: dict[str, dict], inputs: list[str], out: str,
                     figures: list[str] = ()) -> None:
    import pandas as pd

    from . import tables

    frames = []
    for path in inputs:
        rid = Path(path).parent.name
        frame = pd.read_parquet(path)
        frames.append(tables.with_identity(frame, tables.identity_values(experiment, run_specs[rid])))
    tables.write_table(pd.concat(frames, ignore_index=True), out, table=table, specs=run_specs, figures=figures)


def figure(name: str, inputs: list[str], out_png: str) -> None:
    import pandas as pd

    from . import figures

    by_table: dict[str, list] = {}
    for path in inputs:
        by_table.setdefault(Path(path).stem, []).append(pd.read_parquet(path))
    frames = {t: pd.concat(f, ignore_index=True) for t, f in by_table.items()}
    figures.draw(name, frames, Path(out_png).with_suffix(""))
