"""The `memorization` command (also `python -m memorization`): one entry point with subcommands, as git or
snakemake.

    memorization runs [CONFIG...] [--watch [S]]   every run of a config: experiment, run id, what sets it
                                                  apart, and its status read from results/runs/
    memorization show RUN                         one run: its spec, checkpoints, evaluations, tables
    memorization why RUN [CONFIG...]              whether its jobs rerun for their code, and what changed
    memorization check CONFIG...                  check config files as the workflow will
    memorization report [CONFIG...]               snakemake --report of what the run has drawn so far
    memorization plan CONFIG [--devices N]        the predicted time of a config's jobs (--time-of: a run's)
    memorization claims TABLES | figures TABLES   the scorecard, the figures, from a copy of results/tables/
    memorization tables                           the table contract

Reading only the run folders, `runs` and `show` work while Snakemake trains (in another terminal) and on a
copy of results/. `claims`, `figures` and `tables` need only the base install (no torch).
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


def runs_table(config: Config, results: Path) -> list[dict]:
    """One row per (experiment, run) of a config: its id, what sets it apart and its status."""
    rows = []
    for name, specs in config.experiments.items():
        for spec in specs:
            rid = spec.run_id
            label = next((part for part in config.labels[rid].split("; ") if part.split(":")[0] == name), name)
            rows.append(
                {
                    "experiment": name,
                    "run": rid,
                    "differs in": label.partition(": ")[2] or "—",
                    "seeds": len(spec.seeds),
                    "status": run_status(results / "runs" / rid, results / "logs" / "train" / f"{rid}.log"),
                }
            )
    return rows


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
    targets = report_targets(read_config(configs).figures, results)
    if not targets:
        raise SystemExit(f"nothing to report yet: no figure or scorecard under {results}; run snakemake first")
    cmd = [str(Path(sys.executable).with_name("snakemake")), "--report", out]
    if not any(Path(p).exists() for p in ("Snakefile", "workflow/Snakefile")):
        cmd += ["-s", str(REPOSITORY / "Snakefile")]
    # relative to the working directory, as the rules name their outputs; before --configfile, which takes
    # every argument after it
    cmd += [os.path.relpath(t) for t in targets]
    if configs:
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
    """The config of these files as the workflow reads it (`snakemake --configfile A B`: merged in order;
    none: config.yaml), or the error that names what is wrong with it."""
    from ..config import ConfigError, load_config

    try:
        return load_config(files=paths or ["config.yaml"], workdir=Path.cwd())
    except (ConfigError, FileNotFoundError) as err:
        raise SystemExit(f"invalid configuration: {err}") from None


def check(args) -> None:
    """Config files checked as the workflow will check them (Snakemake's own reader of --configfile names no
    line for a YAML mistake; this does), and its results as the workflow checks them before it plans: runs
    changed since training, tables it would rebuild. Exits 1 when a run changed or a table is to be rebuilt."""
    from ..results import checks

    config = read_config(args.configs)
    print(f"valid: {len(config.experiments)} experiments, {len(config.runs)} runs")
    results = Path(args.results)
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

    config, results = read_config(args.configs), Path(args.results)
    if args.run not in config.runs:
        raise SystemExit(f"{args.run} is not a run of this config (memorization runs lists them)")
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
    runs.add_argument("configs", nargs="*", help="config files (default: config.yaml, as snakemake)")
    runs.add_argument("--results", default="results", help="the results folder (default: results)")
    runs.add_argument("--watch", nargs="?", type=float, const=5.0, metavar="S", help="refresh every S seconds")
    one = sub.add_parser("show", help="one run: spec, checkpoints, evaluations, tables")
    one.add_argument("run", help="a run id (memorization runs lists them)")
    one.add_argument("--results", default="results")
    rep = sub.add_parser("report", help="snakemake --report of whatever the run has drawn so far")
    rep.add_argument("configs", nargs="*", help="config files (default: config.yaml)")
    rep.add_argument("--out", default="results/report.html")
    rep.add_argument("--results", default="results")
    chk = sub.add_parser("check", help="check config files as the workflow will")
    chk.add_argument("configs", nargs="+", help="config files, as given to snakemake --configfile (merged in order)")
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
    reason.add_argument("run", help="a run id (memorization runs lists them)")
    reason.add_argument("configs", nargs="*", help="config files (default: config.yaml)")
    reason.add_argument("--results", default="results")
    args = ap.parse_args(argv)
    try:
        run_command(args)
    except Refusal as err:  # a damaged file, say: the command ends with its one-line message, not a traceback
        raise SystemExit(f"error: {err}") from None


def run_command(args) -> None:
    if args.command == "runs":
        config = read_config(args.configs)
        while True:
            text = format_table(runs_table(config, Path(args.results)))
            if args.watch is None:
                print(text, end="")
                return
            sys.stdout.write("\033[2J\033[H" + time.strftime("%H:%M:%S ") + f"(every {args.watch:g} s)\n" + text)
            sys.stdout.flush()
            time.sleep(args.watch)
    elif args.command == "report":
        raise SystemExit(report(args.configs, args.out, Path(args.results)))
    elif args.command == "show":
        print(show(Path(args.results), args.run), end="")
    elif args.command == "tables":
        print(contract_markdown(), end="")
    else:
        {"check": check, "plan": plan, "claims": claims, "figures": figures, "why": why}[args.command](args)


if __name__ == "__main__":
    main()
