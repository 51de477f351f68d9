# Helpers shared by the rules: the config (layered, validated and resolved once), the maps from ids to specs,
# and the catalog every rule derives its wildcards, dispatch and captions from (workflow/memorization/catalog).
import os
import sys
from functools import cache
from pathlib import Path

from snakemake.exceptions import WorkflowError

# This repository, found from this file (`workflow.current_basedir` is rules/ here; `workflow.basedir` would
# be the Snakefile of a workflow that uses this one as a module): its config.yaml and its package, the
# library in workflow/, imported from there (as each job script does), so the workflow also runs from a
# checkout that was not pip-installed, e.g. in a conda env built from envs/ (which clears PYTHONPATH).
REPOSITORY = os.path.dirname(os.path.abspath(workflow.current_basedir))
sys.path.insert(0, os.path.join(REPOSITORY, "workflow"))

# the built-in papers register their figures and claims when imported
from memorization import catalog, papers  # noqa: E402
from memorization.config import ConfigError, load_config, missing_data  # noqa: E402
from memorization.engine import devices, memory  # noqa: E402
from memorization.pipeline import fingerprint, interrupt, plan  # noqa: E402
from memorization.pipeline.cli import report_targets  # noqa: E402
from memorization.results import checks  # noqa: E402
from memorization.results.rundir import METRIC_BENCHMARK, TRAIN_BENCHMARK  # noqa: E402

try:
    # The --configfile files (read again: Snakemake's reader drops duplicate keys), or a config handed to this
    # workflow as a module (what of it is not --config's), laid over a base config where there is one, then
    # the --config values on top, key by key (memorization.config.load_config).
    # (`workdir=` must not start a line here: Snakemake's parser would read it as its `workdir:` keyword)
    _overrides = workflow.config_settings.config  # the --config values alone
    _given = (
        {}
        if workflow.configfiles
        else {k: v for k, v in config.items() if _overrides.get(k) != v}
    )
    _where = {"workdir": os.getcwd(), "repository": REPOSITORY}
    CONFIG = load_config(
        _given, files=workflow.configfiles, overrides=_overrides, **_where
    )
except (ConfigError, FileNotFoundError) as err:
    raise WorkflowError(f"invalid configuration: {err}") from None
# Every data set's files, before any job (not when the first job fails), all at once.
if _missing := missing_data(CONFIG, os.getcwd()):
    raise WorkflowError("invalid configuration: " + "\n".join(_missing))

# This config's own results (docs/design.md "One results folder per config"): its experiment tables, figures,
# findings, scorecard and the record of the config that made them, under results/<name>/. What is shared by
# content (data sets, runs, metric tables) stays in results/data, results/runs and results/metrics, so a run
# trained for one config is reused by another; a second config never writes over the first's figures.
OUT = f"results/{CONFIG.name}"
# Another file of the same name (configs/tiny.yaml after tests/tiny.yaml, or the same config moved): its
# results are replaced as the rules rebuild them, which the user is told, not left to find out.
if (_made_by := checks.recorded_source(f"{OUT}/config.yaml")) not in (
    None,
    CONFIG.source,
):
    print(
        f"note: {OUT}/ holds results of the config {_made_by or '(given as a mapping)'}; this config "
        f"({CONFIG.source or 'given as a mapping'}) has the same name, {CONFIG.name!r}, and replaces what it "
        f"changes there. Set `name:` in it to keep both apart.",
        file=sys.stderr,
    )
config.clear()
config.update(
    CONFIG.values
)  # in place: job scripts see this object as snakemake.config
# What names each run to a person, for its training log: not a param, so a new run in an experiment does not
# rerun the others.
config["run_labels"] = CONFIG.labels

# A device that cannot be had is an error before any job runs, where jobs run here. (On a cluster the
# submitting host may have no GPU while the compute nodes do: the jobs check there.)
if workflow.is_main_process and workflow.local_exec and not workflow.dryrun:
    try:
        devices.check(config["device"])
    except RuntimeError as err:
        raise WorkflowError(
            f"invalid configuration: config key device: {err}"
        ) from None

# Snakemake shares out mem_mb only when told how much there is. Where jobs run on this machine and the
# command gave no --resources mem_mb, it is this machine's memory (memory.machine_mb): two jobs that
# together exceed it never run at once, and one that alone exceeds it runs alone.
if workflow.local_exec and "mem_mb" not in workflow.global_resources:
    workflow.register_resource("mem_mb", memory.machine_mb())

# A training job that alone needs more than the machine has would run alone and be killed for memory:
# say so before anything runs, with the fix (its seeds in smaller jobs).
if workflow.local_exec:
    _here = workflow.global_resources["mem_mb"]
    _here = getattr(_here, "value", _here)  # a Resource when given by --resources
    for _name, _runs in CONFIG.experiments.items():
        for _run in _runs:
            _needs = memory.training_memory_mb(_run)
            if _needs > _here:
                print(
                    f"warning: experiments.{_name}: a training job of {len(_run.seeds)} seeds needs about "
                    f"{_needs} MB, more than the {_here} MB here; set its seeds_per_job to train them in "
                    f"smaller jobs (the same noise draw)",
                    file=sys.stderr,
                )
                break  # once per experiment

EXPERIMENTS = CONFIG.experiments  # experiment → its runs
RUNS = CONFIG.runs  # run id → spec
DATASETS = {spec.dataset_id: spec.data.as_dict() for spec in RUNS.values()}
ANALYSES = config["analyses"]


def one_of(names):
    """A wildcard constraint that matches exactly one of `names`."""
    return "|".join(names) or "(?!)"


wildcard_constraints:
    run="[0-9a-f]{12}",
    settings="[0-9a-f]{12}",
    dataset=f"({one_of(catalog.DATASETS)})-[0-9a-f]{{12}}",
    experiment=one_of(EXPERIMENTS),
    table=one_of(catalog.TABLES),


def table_source(run, table):
    """Where one run's rows of a table come from: the training job, or a metric or summary job (its file
    named by the hash of this config's settings of it: checks.metric_path)."""
    if catalog.table(table).stage == "train":
        return f"results/runs/{run}/{table}.parquet"
    return checks.metric_path(CONFIG, RUNS[run], table)


def all_tables():
    return [
        f"{OUT}/tables/{name}/{table}.parquet"
        for name in EXPERIMENTS
        for table in CONFIG.tables_of(name)
    ]


# Before anything is planned, in the main process only (a cluster job parses this again), the content checks
# (memorization.results.checks; `memorization check` makes them too), reading files only: a finished run whose
# checkpoints or evaluations went missing or changed since training is an error that names the files and the
# command that retrains the run; a damaged table (which Snakemake would not rebuild: it is newer than its
# inputs) and a metric table computed from other files than its run's present ones are to be rebuilt.
REBUILD = {}
if workflow.is_main_process:
    try:
        _changed = checks.changed_runs(f"results/runs/{run}" for run in RUNS)
    except ValueError as err:  # a manifest that cannot be read
        raise WorkflowError(str(err)) from None
    if _changed:
        raise WorkflowError(checks.changed_runs_message(_changed))
    REBUILD = checks.unusable_tables(checks.tables_of(CONFIG), "results/runs")


def rebuild_unusable_tables(_wildcards):
    """An input of the `all` target that is no file: Snakemake calls it when it builds the DAG, after reading the
    command line (a Snakefile is parsed before, and cannot tell a dry run). A run makes the tables to rebuild
    older than any input (modification time 0), so Snakemake's own mtime trigger rebuilds them and what was
    made from them; nothing is deleted. A dry run writes nothing and says what a run will rebuild.
    """
    for path, why in REBUILD.items():
        if workflow.dryrun:
            print(f"{path} {why}: a run will rebuild it", file=sys.stderr)
        else:
            print(f"{path} {why}: rebuilding it", file=sys.stderr)
            os.utime(path, ns=(0, 0))
    return []


def room_for_the_runs(_wildcards):
    """An input of the `all` target that is no file (as above, so that it can tell a dry run): the files the
    runs still to train will write must fit the free disk (memorization plan predicts the same). A run is
    refused before any job; a dry run says so and goes on, so that a big config can be looked at anywhere.
    """
    full = plan.disk_plan(CONFIG, Path("results")).refusal()
    if full and workflow.dryrun:
        print(f"warning: {full}", file=sys.stderr)
    elif full:
        raise WorkflowError(f"invalid configuration: {full}")
    return []


# The code each fingerprint stands for, recorded in results/code/ when a run of the workflow starts (the
# Snakefile's `onstart`; never by a dry run): what `memorization why RUN` compares today's code with.
CODE_MAPS = {}


@cache
def code(job, *implementations):
    """Fingerprint of the code a job runs (a params value: editing that code reruns the job)."""
    code_map = fingerprint.code_map(job, implementations)
    CODE_MAPS[fingerprint.fingerprint(code_map)] = code_map
    return fingerprint.fingerprint(code_map)


def figure_inputs(figure):
    """The tables a figure reads: its registered tables of every experiment that lists it."""
    return [
        f"{OUT}/tables/{name}/{table}.parquet"
        for name in CONFIG.experiments_of(figure)
        for table in catalog.figure(figure).tables
    ]


def figure_code(figure, claims=False):
    """The functions a figure job runs (its statistic, drawing and findings), or a scorecard job (its
    statistic and its claims)."""
    entry = catalog.figure(figure)
    if claims:
        return (entry.compute, *(c.evaluate for c in catalog.claims_of(figure)))
    return (entry.compute, entry.draw, entry.findings)


def scorecard_figures():
    """The figures of this config that have registered claims."""
    claimed = {c.figure for c in catalog.CLAIMS.values()}
    return [fig for fig in CONFIG.figures if fig in claimed]


def all_figures():
    return [
        f"{OUT}/figures/{fig}.{ext}" for fig in CONFIG.figures for ext in ("png", "pdf")
    ]


# Memory (MB) and run time (minutes) of one job's first attempt, a property of the run's data set
# (catalog.Dataset); a retry (`retries: 1` in profiles/slurm, for a job killed for memory or time) gets
# twice as much. No retries where jobs run on this machine: a job that fails here fails again, and a user's
# interrupt is not a fault to retry.
def train_mem_mb(wildcards, attempt):
    """What the job will hold (memorization.engine.memory), more on a retry."""
    return memory.training_memory_mb(RUNS[wildcards.run]) * attempt


def metric_settings(wildcards):
    return CONFIG.metric_settings(wildcards.table, RUNS[wildcards.run].dataset)


def metric_mem_mb(wildcards, attempt):
    return (
        memory.metric_memory_mb(
            wildcards.table, RUNS[wildcards.run], metric_settings(wildcards)
        )
        * attempt
    )


def runtime(wildcards, attempt):
    return catalog.DATASETS[RUNS[wildcards.run].dataset].job_minutes * attempt


def raw_files(dataset):
    """The raw files of a data set under data_root that exist (none for digits, none before a download)."""
    paths = [
        os.path.join(config["data_root"], f) for f in catalog.DATASETS[dataset].files
    ]
    return [p for p in paths if os.path.exists(p)]


def run_dataset(wildcards):
    return f"results/data/{RUNS[wildcards.run].dataset_id}.npz"
