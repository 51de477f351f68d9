"""What the command line shows of runs, read from their folders alone (so it works while Snakemake trains, and on
a copy of results/): a run's status, the runs of a config with what sets each apart (filtered and sorted), one
run in full, and the run a person names (an id, a prefix, words of its label)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..results.rundir import end_path

if TYPE_CHECKING:
    from ..config import Config

# ----------------------------------------------------------------------------- a run's status


def run_status(run_dir: Path, log: Path | None = None) -> str:
    """What a run is doing, from its folder and its training log: "not started", "training: step x of y,
    epoch e, loss, accuracy" (the last row of progress.csv), "done" (end.json) or "failed: <last error
    line>" (a log that ends in an error, without end.json)."""
    if end_path(run_dir).exists():
        return "done"
    error = _last_error(log) if log is not None and log.exists() else None
    row = _last_progress(run_dir / "progress.csv")
    if error is not None:
        return f"failed: {error}"
    if row is None:
        return "started" if (run_dir / "spec.json").exists() else "not started"
    seeds = int(row["seeds"])
    return (
        f"training: step {row['step']} of {row['total_steps']}, epoch {float(row['epoch']):g}, train loss "
        f"{float(row['train_loss']):.4f}, train acc {float(row['train_acc']):.4f}, val acc "
        f"{float(row['val_acc']):.4f} (mean of {seeds} seed{'s' if seeds > 1 else ''})"
    )


def _last_progress(path: Path) -> dict | None:
    try:
        with path.open() as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return None
    return rows[-1] if rows else None


def _last_error(log: Path) -> str | None:
    """The error a job's log ends with (a Python traceback's last line), or None if it ends otherwise."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    if not lines:
        return None
    traceback = max((i for i, line in enumerate(lines) if line.startswith("Traceback")), default=-1)
    later_progress = any(line.startswith(("training ", "epoch ")) for line in lines[traceback + 1 :])
    if traceback < 0 or later_progress:  # no error, or a retry that went on after it
        return None
    return lines[-1][:200]


def runs_table(config: Config, results: Path, where=(), sort: str | None = None) -> list[dict]:
    """One row per (experiment, run) of a config: its id, what sets it apart and its status; only the runs
    whose spec (or row) has each KEY=VALUE of `where`, sorted by a spec key or a column."""
    rows = []
    for name, specs in config.experiments.items():
        for spec in specs:
            rid = spec.run_id
            if not all(_matches(spec, name, rid, key, value) for key, value in map(_key_value, where)):
                continue
            rows.append(
                {
                    "experiment": name,
                    "run": rid,
                    "differs in": _label(config, name, rid).partition(": ")[2] or "—",
                    "seeds": len(spec.seeds),
                    "status": run_status(results / "runs" / rid, results / "logs" / "train" / f"{rid}.log"),
                    "_spec": spec,
                }
            )
    if sort is not None:
        known = {"experiment", "run", "seeds", "status", *spec_keys()}
        if sort not in known:
            raise SystemExit(f"--sort {sort}: not a spec key or a column{_nearest(sort, known)}")
        rows.sort(key=lambda r: _sort_key(r[sort] if sort in r else getattr(r["_spec"], sort)))
    for row in rows:
        del row["_spec"]
    return rows


def spec_keys() -> list[str]:
    import dataclasses

    from ..config import RunSpec

    return [f.name for f in dataclasses.fields(RunSpec)]


def _label(config: Config, experiment: str, rid: str) -> str:
    """The run's label in this experiment: "capacity: width=512, input_noise_fraction=0.4"."""
    return next((part for part in config.labels[rid].split("; ") if part.split(":")[0] == experiment), experiment)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"--where {text}: give KEY=VALUE (a spec key, experiment or status)")
    return key.strip(), value.strip()


def _matches(spec, experiment: str, rid: str, key: str, value: str) -> bool:
    if key == "experiment":
        return experiment == value
    if key == "run":
        return rid.startswith(value)
    if key not in spec_keys():
        raise SystemExit(f"--where {key}={value}: {key} is not a spec key{_nearest(key, spec_keys())}")
    return _same(getattr(spec, key), value)


def _same(actual, text: str) -> bool:
    """A spec value equals a value typed on the command line (1 and 1.0 are one number; null is None)."""
    import yaml

    try:
        typed = yaml.safe_load(text)
    except yaml.YAMLError:
        typed = text
    if isinstance(actual, (int, float)) and isinstance(typed, (int, float)) and not isinstance(actual, bool):
        return float(actual) == float(typed)
    if isinstance(actual, tuple):
        actual = list(actual)
    return actual == typed or str(actual) == text


def _sort_key(value):
    return (value is None, value if isinstance(value, (int, float, str)) else json.dumps(value, default=str))


def _nearest(name: str, names) -> str:
    from ..config.schema import did_you_mean  # the config's own suggestions, for a key on the command line

    return did_you_mean(name, sorted(names))


def find_run(config: Config | None, results: Path, text: str) -> str:
    """The run id that `text` names: an id, a unique prefix of one, or words of its label ("capacity 512",
    "mlp_noise: label_noise_fraction=0.4"); an error that lists the candidates where it names several."""
    ids = sorted(config.runs) if config is not None else sorted(p.name for p in (results / "runs").glob("*"))
    if text in ids:
        return text
    candidates = [rid for rid in ids if rid.startswith(text)]
    if not candidates and config is not None:
        words = text.replace(":", " ").replace(",", " ").replace("/", " ").split()
        labelled = [(name, rid) for name, specs in config.experiments.items() for rid in (s.run_id for s in specs)]
        candidates = sorted({rid for name, rid in labelled if all(_word_in(w, name, _label(config, name, rid))
                                                                   for w in words)})  # fmt: skip
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise SystemExit(f"no run {text!r} in this config (memorization runs lists them)")
    shown = ", ".join(f"{rid} ({config.labels[rid]})" if config else rid for rid in candidates[:8])
    raise SystemExit(f"{text!r} names {len(candidates)} runs: {shown}{' ...' if len(candidates) > 8 else ''}; say more")


def _word_in(word: str, experiment: str, label: str) -> bool:
    """A word of a run's label: its experiment, a key=value, a key or part of one, or a value."""
    pairs = [p.split("=", 1) for p in label.partition(": ")[2].split(", ") if "=" in p]
    return word == experiment or any(word == f"{k}={v}" or word in k or _same_text(word, v) for k, v in pairs)


def _same_text(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


def format_table(rows: list[dict]) -> str:
    if not rows:
        return "(no runs)\n"
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys[:-1]}
    lines = ["  ".join(k.ljust(widths.get(k, 0)) for k in keys).rstrip()]
    for r in rows:
        lines.append("  ".join(str(r[k]).ljust(widths.get(k, 0)) for k in keys).rstrip())
    counts = {}
    for r in rows:
        state = r["status"].split(":")[0]
        counts[state] = counts.get(state, 0) + 1
    lines.append(", ".join(f"{n} {state}" for state, n in counts.items()))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- one run


def show(results: Path, run: str) -> str:
    """A run's spec, checkpoints, evaluations, progress and the rows of its tables."""
    run_dir = results / "runs" / run
    if not run_dir.is_dir():
        raise SystemExit(f"no run {run} under {results / 'runs'} (memorization runs lists the config's runs)")
    lines = [f"run {run}: {run_status(run_dir, results / 'logs' / 'train' / f'{run}.log')}"]
    spec_file = run_dir / "spec.json"
    if spec_file.exists():
        from ..config.spec import identity  # the workflow's install: the base one reads tables only

        spec = identity(json.loads(spec_file.read_text()))
        lines += ["", "spec (defaults left out):"] + [f"  {k}: {json.dumps(v)}" for k, v in spec.items()]
    final = final_metrics(run_dir)
    if final:
        lines += ["", "final metrics per seed (the last evaluation):", *final]
    checkpoints = sorted(int(p.stem.split("_")[1]) for p in run_dir.glob("checkpoints/step_*.pt"))
    evals = list(run_dir.glob("evals/step_*.npz"))
    lines += ["", f"checkpoints at steps: {', '.join(map(str, checkpoints)) or 'none yet'}"]
    epochs = len(list(run_dir.glob("presentations/*.npz")))
    lines.append(f"evaluations: {len(evals)}; epochs of presentations: {epochs}")
    tables = sorted([*run_dir.glob("*.parquet"), *(results / "metrics" / run).glob("*.parquet")])
    if tables:
        import pyarrow.parquet as pq

        lines += ["", "tables:"] + [f"  {p.stem}: {pq.ParquetFile(p).metadata.num_rows} rows ({p})" for p in tables]
    return "\n".join(lines) + "\n"


def final_metrics(run_dir: Path) -> list[str]:
    """Each seed's last evaluation: from training.parquet when the run is done, else from its latest
    evaluation file (a run still training; its seeds from spec.json)."""
    names = ("train_loss", "train_acc", "val_loss", "val_acc")
    path = run_dir / "training.parquet"
    if path.exists():
        import pandas as pd

        frame = pd.read_parquet(path)
        last = frame.sort_values("step").groupby("seed").tail(1).sort_values("seed")
        rows = [(int(r.seed), int(r.step), *(float(getattr(r, n)) for n in names)) for r in last.itertuples()]
    else:
        evals = sorted(run_dir.glob("evals/step_*.npz"))
        if not evals or not (run_dir / "spec.json").exists():
            return []
        from ..results.files import read_npz

        arrays, seeds = read_npz(evals[-1], list(names)), json.loads((run_dir / "spec.json").read_text())["seeds"]
        step = int(evals[-1].stem.split("_")[1])
        rows = [(int(seed), step, *(float(arrays[n][i]) for n in names)) for i, seed in enumerate(seeds)]
    head = "  seed       step  train_loss  train_acc  val_loss  val_acc"
    return [head] + [f"  {s:>4}  {t:>9}  {a:>10.4f}  {b:>9.4f}  {c:>8.4f}  {d:>7.4f}" for s, t, a, b, c, d in rows]
