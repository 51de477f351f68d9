"""The `memorization` command (also `python -m memorization`): one entry point with subcommands, as git or
snakemake.

    memorization runs [CONFIG...] [--watch [S]]   every run of a config: experiment, run id, what sets it
                [--where KEY=VALUE] [--sort KEY]  apart, and its status read from results/runs/
    memorization show RUN                         one run: its spec, each seed's final metrics, its files
    memorization why RUN [CONFIG...]              whether its jobs rerun for their code, and what changed
    memorization check [CONFIG...]                check config files as the workflow will, every error at once
    memorization report [CONFIG...]               snakemake --report of what the run has drawn so far
    memorization plan CONFIG [--devices N]        the predicted time of a config's jobs (--time-of: a run's)
    memorization claims TABLES | figures TABLES   the scorecard, the figures, from a copy of results/tables/
    memorization tables                           the table contract

Reading only the run folders, `runs` and `show` work while Snakemake trains (in another terminal) and on a
copy of results/. `claims`, `figures` and `tables` need only the base install (no torch).

Without a config file, a command takes the config whose results are under --results (results/<name>/config.yaml,
written by the workflow; the newest where several configs ran), then config.yaml, then config/config.yaml (a
snakedeploy deployment). RUN is a run id, a unique prefix of one, or its label ("capacity: width=512", or any
words of it: "capacity 512 0.4").
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .. import catalog, papers  # noqa: F401 (papers: registers the built-in figures and claims)
from ..results.files import Refusal
from ..results.rundir import end_path
from ..results.tables import contract_markdown, tables_by_figure
from .readme import PLAN, RUN_TIME, SCORECARD, into_readme

if TYPE_CHECKING:
    from ..config import Config

REPOSITORY = Path(__file__).resolve().parents[3]

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
    import difflib

    close = difflib.get_close_matches(name, list(names), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


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


# ----------------------------------------------------------------------------- the report of any state


def report_targets(figures: list[str], results: Path) -> list[str]:
    """What `snakemake --report` can show of the run so far: the figures drawn, the scorecard, and the
    findings page once every figure is there (Snakemake refuses a report that would name a missing file)."""
    drawn = [f"{results}/figures/{f}.png" for f in figures if (results / "figures" / f"{f}.png").exists()]
    targets = list(drawn)
    if (results / "scorecard.html").exists():
        targets.append(f"{results}/scorecard.html")
    if len(drawn) == len(figures) and (results / "findings.html").exists():
        targets.append(f"{results}/findings.html")
    return targets


def report(configs: list[str], out: str, results: Path) -> int:
    """`snakemake --report OUT` restricted to what exists, so a partial run has its report too."""
    config, configs = find_config(configs, results)
    targets = report_targets(config.figures, results / config.name)
    if not targets:
        raise SystemExit(
            f"nothing to report yet: no figure or scorecard under {results / config.name}; run snakemake first"
        )
    cmd = [str(Path(sys.executable).with_name("snakemake")), "--report", out]
    if not any(Path(p).exists() for p in ("Snakefile", "workflow/Snakefile")):
        cmd += ["-s", str(REPOSITORY / "Snakefile")]
    # relative to the working directory, as the rules name their outputs; before --configfile, which takes
    # every argument after it
    cmd += [os.path.relpath(t) for t in targets]
    if not configs:  # a record whose config file is not here: hand snakemake the recorded config itself
        import tempfile

        import yaml

        handle, path = tempfile.mkstemp(suffix=".yaml")
        os.write(handle, yaml.safe_dump(config.values).encode())
        os.close(handle)
        configs = [path]
    cmd += ["--configfile", *configs]
    print(f"report of {len(targets)} file(s) so far into {out}", file=sys.stderr)
    return subprocess.run(cmd).returncode


# ----------------------------------------------------------------------------- the commands that read tables


def claims(args) -> None:
    """The reproduction scorecard from a copy of results/tables/ (or the registered claims, --list)."""
    from ..report import scorecard

    if args.list:
        print(scorecard.claims_markdown(), end="")
        return
    if not args.tables_dir:
        raise SystemExit("memorization claims: give the tables directory (or --list)")
    card = scorecard.scorecard(tables_by_figure(args.tables_dir))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        scorecard.write(card, out / "scorecard.parquet", out / "scorecard.md", out / "scorecard.html")
    if args.readme:
        into_readme(args.readme, SCORECARD, scorecard.markdown(card))
    print(scorecard.markdown(card), end="")


def figures(args) -> None:
    """The figures a copy of results/tables/ feeds, drawn from the tables alone."""
    from ..report.figures import figures_from_tables

    written = figures_from_tables(args.tables_dir, args.out_dir, stamp=args.stamp_findings)
    if not written:
        raise SystemExit(
            f"no figure could be drawn from {args.tables_dir}: expected <experiment>/<table>.parquet files "
            "written by this workflow"
        )
    for path in written:
        print(path)


# ----------------------------------------------------------------------------- the commands that read configs


def read_config(paths) -> Config:
    """The config of these files as the workflow reads it (`snakemake --configfile A B`: merged in order),
    or the error that names what is wrong with it."""
    from ..config import ConfigError, load_config

    try:
        return load_config(files=paths, workdir=Path.cwd())
    except (ConfigError, FileNotFoundError) as err:
        raise SystemExit(f"invalid configuration: {err}") from None


def find_config(paths, results: Path) -> tuple[Config, list[str]]:
    """The config a command is about, and the files to hand snakemake for it: the files given; else the
    config whose results are under `results` (results/<name>/config.yaml; the newest record where several
    configs ran, said on stderr); else config.yaml, or config/config.yaml (a snakedeploy deployment)."""
    from ..config import ConfigError, load_config
    from ..results.checks import read_config_record

    if paths:
        return read_config(paths), list(paths)
    records = sorted(results.glob("*/config.yaml"), key=lambda p: p.stat().st_mtime)
    if (results / "config.yaml").is_file():  # --results names one config's folder
        records, results = [results / "config.yaml"], results.parent
    if records:
        if len(records) > 1:
            others = ", ".join(p.parent.name for p in records[:-1])
            print(f"config {records[-1].parent.name} (the newest under {results}; also there: {others}; "
                  "give a config file to choose)", file=sys.stderr)  # fmt: skip
        try:
            record = read_config_record(records[-1])
            config = load_config(record["config"], workdir=Path.cwd())
        except (ConfigError, FileNotFoundError) as err:
            raise SystemExit(f"{records[-1]}: {err}") from None
        source = str(record.get("source") or "")
        return config, [source] if source and Path(source).is_file() else []
    for candidate in ("config.yaml", "config/config.yaml"):
        if Path(candidate).is_file():
            return read_config([candidate]), [candidate]
    raise SystemExit(
        f"no config found: no results/<config>/config.yaml under {results}, no config.yaml and no "
        "config/config.yaml here; give a config file (memorization runs path/to/config.yaml)"
    )


def check(args) -> None:
    """Config files checked as the workflow will check them (Snakemake's own reader of --configfile names no
    line for a YAML mistake; this does), and its results as the workflow checks them before it plans: runs
    changed since training, tables it would rebuild. Exits 1 when a run changed or a table is to be rebuilt."""
    from ..config import missing_data
    from ..results import checks

    results = Path(args.results)
    config, _ = find_config(args.configs, results)
    missing = missing_data(config, Path.cwd())
    if missing:
        raise SystemExit("invalid configuration: " + "\n".join(missing))
    print(f"valid: {len(config.experiments)} experiments, {len(config.runs)} runs; results in {results / config.name}")
    if not results.is_dir():
        return
    try:
        changed = checks.changed_runs(results / "runs" / run for run in config.runs)
    except ValueError as err:  # a manifest that cannot be read
        raise SystemExit(str(err)) from None
    rebuild = checks.unusable_tables(checks.tables_of(config, str(results)), results / "runs")
    for path, why in rebuild.items():
        print(f"{path} {why}: snakemake rebuilds it and what was made from it")
    if changed:
        raise SystemExit(checks.changed_runs_message(changed))
    if rebuild:
        raise SystemExit(1)
    print(f"{results}: every finished run's files as training wrote them, every table readable")


def plan(args) -> None:
    """The cost plan of a config, or where the time of a finished run went (--time-of)."""
    if args.time_of:
        from .run_time import where_time_went

        text = where_time_went(args.time_of)
        if args.readme:
            into_readme(args.readme, RUN_TIME, text)
        print(text, end="")
        return
    if not args.config:
        raise SystemExit("memorization plan: give a config file (or --time-of DIR)")
    import torch

    from . import plan as cost

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(1 if device == "cpu" else torch.get_num_threads())  # as the jobs run
    config = read_config([args.config])
    timings = cost.calibrations(list(config.runs.values()), device, Path(args.cache or cost.default_cache(device)))
    job_list = cost.jobs(config, timings)
    text = cost.report(job_list, args.devices, device)
    print(text, end="")
    if args.readme:
        command = f"memorization plan {args.config} --devices {args.devices}"
        into_readme(args.readme, PLAN, f"`{command}`:\n\n```\n{text}```\n")
    if args.compare:
        from .run_time import compare

        print("\n" + compare(job_list, Path(args.compare)), end="")


def why(args) -> None:
    """Whether a run's jobs would rerun for a change of their code, and which definitions changed: the code
    its outputs were made with (end.json, each table's metadata, results/code/) against today's."""
    from ..results.tables import read_provenance
    from . import fingerprint
    from .jobs import CODE, trained_with

    results = Path(args.results)
    config, _ = find_config(args.configs, results)
    args.run = find_run(config, results, args.run)
    code, run_dir = results / "code", results / "runs" / args.run

    def verdict(made_with: str | None, job: str, implementations=()) -> str:
        now = fingerprint.code_map(job, implementations)
        if made_with is None:
            return "not made yet"
        if made_with == fingerprint.fingerprint(now):
            return "up to date (its code is unchanged)"
        return f"reruns: {fingerprint.explain(code, made_with, now)}"

    lines = [f"training: {verdict(trained_with(run_dir), 'train')}"]
    tables = {t for name, runs in config.experiments.items() if args.run in {r.run_id for r in runs}
              for t in config.tables_of(name)}  # fmt: skip
    for table in sorted(t for t in tables if catalog.table(t).stage != "train"):
        path = results / "metrics" / args.run / f"{table}.parquet"
        made_with = read_provenance(path).get(CODE) if path.exists() else None
        if catalog.table(table).stage == "metric":
            lines.append(f"{table}: {verdict(made_with, 'metric', fingerprint.metric_implementations(table))}")
        else:
            lines.append(f"{table}: {verdict(made_with, 'summary', [catalog.table(table).compute])}")
    print("\n".join(lines))


# ----------------------------------------------------------------------------- the command


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="memorization", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    runs = sub.add_parser("runs", help="every run of a config and its status")
    runs.add_argument(
        "configs",
        nargs="*",
        help="config files (default: the config of the newest results, then config.yaml, then config/config.yaml)",
    )
    runs.add_argument("--results", default="results", help="the results folder (default: results)")
    runs.add_argument("--watch", nargs="?", type=float, const=5.0, metavar="S", help="refresh every S seconds")
    runs.add_argument(
        "--where", action="append", default=[], metavar="KEY=VALUE", help="only runs with this value of a spec key"
    )
    runs.add_argument("--sort", metavar="KEY", help="sort by a spec key or a column (status, seeds, ...)")
    one = sub.add_parser("show", help="one run: spec, each seed's final metrics, checkpoints, tables")
    one.add_argument("run", help="a run id, a unique prefix, or words of its label (memorization runs lists them)")
    one.add_argument("configs", nargs="*", help="config files (default: found, as for runs)")
    one.add_argument("--results", default="results")
    rep = sub.add_parser("report", help="snakemake --report of whatever the run has drawn so far")
    rep.add_argument("configs", nargs="*", help="config files (default: found, as for runs)")
    rep.add_argument("--out", default="results/report.html")
    rep.add_argument("--results", default="results")
    chk = sub.add_parser("check", help="check config files as the workflow will")
    chk.add_argument("configs", nargs="*", help="config files, as given to snakemake --configfile (default: found)")
    chk.add_argument("--results", default="results", help="the results folder to check, where there is one")
    cost = sub.add_parser("plan", help="the predicted device and wall time of a config's jobs")
    cost.add_argument("config", nargs="?", help="a config file (as given to snakemake --configfile)")
    cost.add_argument("--time-of", help="instead: where the time of the run in this working directory went")
    cost.add_argument("--devices", type=int, default=1, help="devices (GPUs, or CPU job slots) working in parallel")
    cost.add_argument("--device", help="calibrate on this device (default: cuda if present, else cpu)")
    cost.add_argument("--cache", help="calibration cache (default: ~/.cache/memorization/calibration-<device>.json)")
    cost.add_argument("--compare", help="a results/ folder of an actual run: compare with its benchmark files")
    cost.add_argument("--readme", help="also write the plan into this README's generated plan section")
    card = sub.add_parser("claims", help="the reproduction scorecard from a copy of results/tables/")
    card.add_argument("tables_dir", nargs="?", help="a folder laid out as results/tables/<experiment>/<table>.parquet")
    card.add_argument("--out", help="also write scorecard.parquet, scorecard.md and scorecard.html here")
    card.add_argument("--list", action="store_true", help="print the registered claims (no tables needed)")
    card.add_argument("--readme", help="write the scorecard into this README's generated results section")
    figs = sub.add_parser("figures", help="the figures from a copy of results/tables/")
    figs.add_argument("tables_dir", help="a folder laid out as results/tables/<experiment>/<table>.parquet")
    figs.add_argument("out_dir", nargs="?", default="figures", help="where to write figNN_<slug>.png/.pdf")
    figs.add_argument("--stamp-findings", action="store_true", help="print what this run shows under each plot")
    sub.add_parser("tables", help="print the table contract (the generated part of docs/tables.md)")
    reason = sub.add_parser("why", help="whether a run's jobs rerun for their code, and which functions changed")
    reason.add_argument("run", help="a run id, a unique prefix, or words of its label")
    reason.add_argument("configs", nargs="*", help="config files (default: found, as for runs)")
    reason.add_argument("--results", default="results")
    args = ap.parse_args(argv)
    try:
        run_command(args)
    except Refusal as err:  # a damaged file, say: the command ends with its one-line message, not a traceback
        raise SystemExit(f"error: {err}") from None


def run_command(args) -> None:
    if args.command == "runs":
        config, _ = find_config(args.configs, Path(args.results))
        while True:
            text = format_table(runs_table(config, Path(args.results), args.where, args.sort))
            if args.watch is None:
                print(text, end="")
                return
            sys.stdout.write("\033[2J\033[H" + time.strftime("%H:%M:%S ") + f"(every {args.watch:g} s)\n" + text)
            sys.stdout.flush()
            time.sleep(args.watch)
    elif args.command == "report":
        raise SystemExit(report(args.configs, args.out, Path(args.results)))
    elif args.command == "show":
        results = Path(args.results)
        try:
            config, _ = find_config(args.configs, results)
        except SystemExit:  # no config anywhere: ids and prefixes of the run folders still work
            config = None
        print(show(results, find_run(config, results, args.run)), end="")
    elif args.command == "tables":
        print(contract_markdown(), end="")
    else:
        {"check": check, "plan": plan, "claims": claims, "figures": figures, "why": why}[args.command](args)


if __name__ == "__main__":
    main()
