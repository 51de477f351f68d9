"""The `memorization` command: one entry point with subcommands, as git or snakemake.

    memorization runs [CONFIG...] [--watch [S]]   every run of a config: experiment, run id, what sets it
                                                  apart, and its status read from results/runs/
    memorization show RUN                         one run: its spec, checkpoints, evaluations, tables
    memorization check CONFIG...                  check config files (python -m memorization.spec)
    memorization report [CONFIG...]               snakemake --report of what the run has drawn so far
    memorization plan | claims | figures ...      the cost plan, the scorecard, the figures from tables

The `python -m memorization.<module>` entry points do the same. Reading only the run folders, `runs` and
`show` work while Snakemake trains (in another terminal) and on a copy of results/.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

from .rundir import end_path

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


def runs_table(config: dict, results: Path) -> list[dict]:
    """One row per (experiment, run) of a config: its id, what sets it apart and its status."""
    from .configuration import expand, run_id, run_labels

    experiments = expand(config)
    labels = run_labels(experiments)
    rows = []
    for name, specs in experiments.items():
        for spec in specs:
            rid = run_id(spec)
            label = next((part for part in labels[rid].split("; ") if part.split(":")[0] == name), name)
            rows.append(
                {
                    "experiment": name,
                    "run": rid,
                    "differs in": label.partition(": ")[2] or "—",
                    "seeds": len(spec["seeds"]),
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
        from .configuration import identity

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


def report_targets(config: dict, results: Path) -> list[str]:
    """What `snakemake --report` can show of the run so far: the figures drawn, the scorecard, and the
    findings page once every figure is there (Snakemake refuses a report that would name a missing file)."""
    figures = sorted({f for exp in config["experiments"].values() for f in exp.get("figures", [])})
    drawn = [f"{results}/figures/{f}.png" for f in figures if (results / "figures" / f"{f}.png").exists()]
    targets = list(drawn)
    if (results / "scorecard.html").exists():
        targets.append(f"{results}/scorecard.html")
    if len(drawn) == len(figures) and (results / "findings.html").exists():
        targets.append(f"{results}/findings.html")
    return targets


def report(configs: list[str], out: str, results: Path) -> int:
    """`snakemake --report OUT` restricted to what exists, so a partial run has its report too."""
    import subprocess

    from .configuration import load_files

    config = load_files(configs or ["config.yaml"])
    targets = report_targets(config, results)
    if not targets:
        raise SystemExit(f"nothing to report yet: no figure or scorecard under {results}; run snakemake first")
    cmd = [str(Path(sys.executable).with_name("snakemake")), "--report", out]
    if not any(Path(p).exists() for p in ("Snakefile", "workflow/Snakefile")):
        cmd += ["-s", str(Path(__file__).resolve().parents[2] / "Snakefile")]
    # relative to the working directory, as the rules name their outputs; before --configfile, which takes
    # every argument after it
    cmd += [os.path.relpath(t) for t in targets]
    if configs:
        cmd += ["--configfile", *configs]
    print(f"report of {len(targets)} file(s) so far into {out}", file=sys.stderr)
    return subprocess.run(cmd).returncode


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
    for name, module, text in (
        ("check", "configuration", "check config files as the workflow will (python -m memorization.spec)"),
        ("plan", "plan", "the cost plan of a config (python -m memorization.plan)"),
        ("claims", "claims", "the reproduction scorecard from tables (python -m memorization.claims)"),
        ("figures", "figures", "the figures from a copy of results/tables (python -m memorization.figures)"),
    ):
        p = sub.add_parser(name, help=text, add_help=False)
        p.set_defaults(module=module)
    args, rest = ap.parse_known_args(argv)
    if args.command in ("runs", "show", "report") and rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "runs":
        from .configuration import ConfigError, load_files

        try:
            config = load_files(args.configs or ["config.yaml"])
        except (ConfigError, FileNotFoundError) as err:
            raise SystemExit(f"invalid configuration: {err}") from None
        while True:
            text = format_table(runs_table(config, Path(args.results)))
            if args.watch is None:
                print(text, end="")
                return
            sys.stdout.write("\033[2J\033[H" + time.strftime("%H:%M:%S ") + f"(every {args.watch:g} s)\n" + text)
            sys.stdout.flush()
            time.sleep(args.watch)
    if args.command == "report":
        raise SystemExit(report(args.configs, args.out, Path(args.results)))
    if args.command == "show":
        print(show(Path(args.results), args.run), end="")
        return
    import importlib

    from .files import reported

    reported(importlib.import_module(f"memorization.{args.module}").main)(rest)


if __name__ == "__main__":
    main()
