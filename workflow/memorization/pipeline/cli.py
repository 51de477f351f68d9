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
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .. import catalog, papers  # noqa: F401 (papers: registers the built-in figures and claims)
from ..catalog import load_analyses
from ..results.files import Refusal
from ..results.tables import contract_markdown, tables_by_figure
from .readme import PLAN, RUN_TIME, SCORECARD, into_readme
from .status import find_run, format_table, run_status, runs_table, show  # noqa: F401 (run_status: the API)

if TYPE_CHECKING:
    from ..config import Config

REPOSITORY = Path(__file__).resolve().parents[3]

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
    config, configs, results = find_config(configs, results)
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
    load_analyses(args.analyses)
    skipped = {}
    card = scorecard.scorecard(tables_by_figure(args.tables_dir, skipped))
    for fig, why in skipped.items():
        print(f"{fig}: {why}", file=sys.stderr)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        scorecard.write(card, out / "scorecard.parquet", out / "scorecard.md", out / "scorecard.html")
    if args.page:
        Path(args.page).write_text(scorecard.page(card))
    if args.readme:
        relative = os.path.relpath(args.page, Path(args.readme).parent) if args.page else "docs/scorecard.md"
        into_readme(args.readme, SCORECARD, scorecard.summary(card, relative))
    print(scorecard.markdown(card), end="")


def figures(args) -> None:
    """The figures a copy of results/tables/ feeds, drawn from the tables alone."""
    from ..report.figures import figures_from_tables

    load_analyses(args.analyses)
    skipped = {}
    written = figures_from_tables(args.tables_dir, args.out_dir, stamp=args.stamp_findings, skipped=skipped)
    for fig, why in skipped.items():
        print(f"{fig}: {why}", file=sys.stderr)
    if not written:
        raise SystemExit(
            f"no figure could be drawn from {args.tables_dir}: expected <experiment>/<table>.parquet files "
            "written by this workflow"
        )
    for path in written:
        print(path)
    if skipped:
        raise SystemExit(1)


# ----------------------------------------------------------------------------- the commands that read configs


def read_config(paths) -> Config:
    """The config of these files as the workflow reads it (`snakemake --configfile A B`: merged in order),
    or the error that names what is wrong with it."""
    from ..config import ConfigError, load_config

    try:
        return load_config(files=paths, workdir=Path.cwd())
    except (ConfigError, FileNotFoundError) as err:
        raise SystemExit(f"invalid configuration: {err}") from None


def find_config(paths, results: Path) -> tuple[Config, list[str], Path]:
    """The config a command is about, the files to hand snakemake for it, and the results folder its runs are
    in: the files given; else the config whose results are under `results` (results/<name>/config.yaml; the
    newest record where several configs ran, said on stderr; or `results` is one config's folder, its runs
    in the folder above); else config.yaml, or config/config.yaml (a snakedeploy deployment)."""
    from ..config import ConfigError, load_config
    from ..results.checks import read_config_record

    one_config = (results / "config.yaml").is_file()
    root = results.parent if one_config else results
    if paths:
        return read_config(paths), list(paths), root
    records = [results / "config.yaml"] if one_config else sorted(results.glob("*/config.yaml"),
                                                                   key=lambda p: p.stat().st_mtime)  # fmt: skip
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
        return config, [source] if source and Path(source).is_file() else [], root
    for candidate in ("config.yaml", "config/config.yaml"):
        if Path(candidate).is_file():
            return read_config([candidate]), [candidate], root
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

    config, _, results = find_config(args.configs, Path(args.results))
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
    disk = cost.disk_plan(config, Path(args.results))
    text = cost.report(job_list, args.devices, device) + disk.report()
    print(text, end="")
    if args.readme:
        command = f"memorization plan {args.config} --devices {args.devices}"
        into_readme(args.readme, PLAN, f"`{command}`:\n\n```\n{text}```\n")
    if args.compare:
        from .run_time import compare

        print("\n" + compare(job_list, Path(args.compare)), end="")
    if disk.refusal():
        raise SystemExit(f"{args.config}: {disk.refusal()}")


def why(args) -> None:
    """Whether a run's jobs would rerun for a change of their code, and which definitions changed: the code
    its outputs were made with (end.json, each table's metadata, results/code/) against today's."""
    from ..results.checks import metric_path
    from ..results.tables import read_provenance
    from . import fingerprint
    from .jobs import CODE, trained_with

    config, _, results = find_config(args.configs, Path(args.results))
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
        path = Path(metric_path(config, config.runs[args.run], table, str(results)))
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
    cost.add_argument("--results", default="results", help="the results folder (its finished runs need no disk)")
    card = sub.add_parser("claims", help="the reproduction scorecard from a copy of results/tables/")
    card.add_argument("tables_dir", nargs="?", help="a folder laid out as results/tables/<experiment>/<table>.parquet")
    card.add_argument("--out", help="also write scorecard.parquet, scorecard.md and scorecard.html here")
    card.add_argument("--list", action="store_true", help="print the registered claims (no tables needed)")
    card.add_argument("--readme", help="write a summary of the scorecard into this README's generated section")
    card.add_argument("--page", help="write the whole scorecard as a Markdown page (docs/scorecard.md)")
    card.add_argument("--analyses", nargs="+", default=[], metavar="FILE", help="analysis files whose claims to load")
    figs = sub.add_parser("figures", help="the figures from a copy of results/tables/")
    figs.add_argument("tables_dir", help="a folder laid out as results/tables/<experiment>/<table>.parquet")
    figs.add_argument("out_dir", nargs="?", default="figures", help="where to write figNN_<slug>.png/.pdf")
    figs.add_argument("--stamp-findings", action="store_true", help="print what this run shows under each plot")
    figs.add_argument("--analyses", nargs="+", default=[], metavar="FILE", help="analysis files whose figures to load")
    tb = sub.add_parser("board", help="TensorBoard on a config's runs, live while they train")
    tb.add_argument("configs", nargs="*", help="config files (default: found, as for runs)")
    tb.add_argument("--results", default="results")
    tb.add_argument("--port", type=int, help="the port (default: a free one)")
    tb.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1, this machine only)"
    )
    sub.add_parser("tables", help="print the table contract (the generated part of docs/tables.md)")
    reason = sub.add_parser("why", help="whether a run's jobs rerun for their code, and which functions changed")
    reason.add_argument("run", help="a run id, a unique prefix, or words of its label")
    reason.add_argument("configs", nargs="*", help="config files (default: found, as for runs)")
    reason.add_argument("--results", default="results")
    for parser in (runs, one, rep, chk, reason, tb):  # `--config FILE`, as well as the files named in place
        parser.add_argument("--config", action="append", default=[], metavar="FILE", help="a config file")
    args = ap.parse_args(argv)
    if hasattr(args, "configs"):
        args.configs = [*args.configs, *args.config]
    try:
        run_command(args)
    except Refusal as err:  # a damaged file, say: the command ends with its one-line message, not a traceback
        raise SystemExit(f"error: {err}") from None


def run_command(args) -> None:
    if args.command == "runs":
        config, _, results = find_config(args.configs, Path(args.results))
        while True:
            text = format_table(runs_table(config, results, args.where, args.sort))
            if args.watch is None:
                print(text, end="")
                return
            sys.stdout.write("\033[2J\033[H" + time.strftime("%H:%M:%S ") + f"(every {args.watch:g} s)\n" + text)
            sys.stdout.flush()
            time.sleep(args.watch)
    elif args.command == "report":
        raise SystemExit(report(args.configs, args.out, Path(args.results)))
    elif args.command == "show":
        try:
            config, _, results = find_config(args.configs, Path(args.results))
        except SystemExit:  # no config anywhere: ids and prefixes of the run folders still work
            config, results = None, Path(args.results)
        print(show(results, find_run(config, results, args.run)), end="")
    elif args.command == "board":
        from .board import board

        config, _, results = find_config(args.configs, Path(args.results))
        raise SystemExit(board(config, results, args.host, args.port))
    elif args.command == "tables":
        print(contract_markdown(), end="")
    else:
        {"check": check, "plan": plan, "claims": claims, "figures": figures, "why": why}[args.command](args)


if __name__ == "__main__":
    main()
