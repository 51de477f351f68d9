# Helpers shared by the rules: the config (layered, validated), the maps from ids to specs, and the
# registries every rule derives its wildcards, dispatch and captions from (workflow/memorization/registry.py).
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

from memorization import devices, registry  # noqa: E402
from memorization import configuration, memory, plan  # noqa: E402
from memorization.fingerprint import job_fingerprint  # noqa: E402
from memorization.cli import report_targets  # noqa: E402
from memorization.files import unusable_tables  # noqa: E402
from memorization.rundir import (
    METRIC_BENCHMARK,
    TRAIN_BENCHMARK,
    changed_files,
)  # noqa: E402

try:
    # The --configfile files (read again: Snakemake's reader drops duplicate keys) laid over a base config
    # where there is one, then the --config values on top, key by key (configuration.load_config).
    # (`workdir=` must not start a line here: Snakemake's parser would read it as its `workdir:` keyword)
    # The config files: --configfile's, and a `configfile:` of a Snakefile that uses this one as a module
    # (snakedeploy writes `configfile: "config/config.yaml"`).
    _files = configuration.read_files(workflow.configfiles)
    _overrides = workflow.config_settings.config  # the --config values alone
    if (
        not workflow.configfiles
    ):  # a module may be handed its config as a dict: what is not --config's
        _files = {k: v for k, v in config.items() if _overrides.get(k) != v}
    _layered = configuration.load(
        _files, overrides=_overrides, workdir=os.getcwd(), repository=REPOSITORY
    )
except (configuration.ConfigError, FileNotFoundError) as err:
    raise WorkflowError(f"invalid configuration: {err}") from None
config.clear()
config.update(_layered)  # in place: job scripts see this object as snakemake.config

# Warm job processes (memorization.warm) only where jobs run on this machine: on a cluster a fork of one job's
# server would run inside another job's allocation.
if not workflow.local_exec:
    config["warm_jobs"] = False

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

# experiment → [resolved run spec]; run id → spec; data set id → its data keys
EXPERIMENTS = configuration.expand(config)

# A training job that alone needs more than the machine has would run alone and be killed for memory:
# say so before anything runs, with the fix (its seeds in smaller jobs).
if workflow.local_exec:
    _here = workflow.global_resources["mem_mb"]
    _here = getattr(_here, "value", _here)  # a Resource when given by --resources
    for _name, _runs in EXPERIMENTS.items():
        for _run in _runs:
            _needs = plan.training_memory_mb(_run)
            if _needs > _here:
                print(
                    f"warning: experiments.{_name}: a training job of {len(_run['seeds'])} seeds needs about "
                    f"{_needs} MB, more than the {_here} MB here; set its seeds_per_job to train them in "
                    f"smaller jobs (the same noise draw)",
                    file=sys.stderr,
                )
                break  # once per experiment
RUNS = {configuration.run_id(s): s for runs in EXPERIMENTS.values() for s in runs}
DATASETS = {
    configuration.dataset_id(s): configuration.dataset_spec(s) for s in RUNS.values()
}
ANALYSES = config["analyses"]

# A finished run whose checkpoints or evaluations went missing or changed since training is an error now,
# before its metric jobs would read it: the message names the files and the command that retrains the run.
# (Cheap: a file whose size and modification time are as training left them is not hashed.)
try:
    _changed = {run: changed_files(f"results/runs/{run}") for run in RUNS}
except ValueError as err:  # a manifest that cannot be read
    raise WorkflowError(str(err)) from None
_changed = {run: problems for run, problems in _changed.items() if problems}
if _changed:
    raise WorkflowError(
        "results changed since training: "
        + "; ".join(p for problems in _changed.values() for p in problems[:3])
        + ". Put the files back, or train again: "
        + " ".join(
            f"snakemake --forcerun results/runs/{run}/manifest.json" for run in _changed
        )
    )

# A damaged table (which Snakemake would not rebuild: it is newer than its inputs) and a metric table computed
# from other files than its run's present ones are made out of date: their modification time is set to the
# epoch, older than any input, so Snakemake's own mtime trigger rebuilds them and what was made from them (a
# dry run shows those jobs; nothing is deleted). In the main process only: a cluster job parses this again.
if workflow.is_main_process:
    for _path, _why in unusable_tables("results", RUNS).items():
        print(f"{_path} {_why}: rebuilding it", file=sys.stderr)
        os.utime(_path, ns=(0, 0))


def one_of(names):
    """A wildcard constraint that matches exactly one of `names`."""
    return "|".join(names) or "(?!)"


wildcard_constraints:
    run="[0-9a-f]{12}",
    dataset=f"({one_of(registry.DATASETS)})-[0-9a-f]{{12}}",
    experiment=one_of(EXPERIMENTS),
    table=one_of(registry.TABLES),


@cache
def code(job, *implementations):
    """Fingerprint of the code a job runs (a params value: editing that code reruns the job)."""
    return job_fingerprint(job, implementations)


def all_tables():
    return [
        f"results/tables/{name}/{table}.parquet"
        for name in EXPERIMENTS
        for table in configuration.experiment_tables(config, name)
    ]


def figure_experiments(figure):
    return [
        name
        for name, exp in config["experiments"].items()
        if figure in exp.get("figures", [])
    ]


def figure_inputs(figure):
    """The tables a figure reads: its registered tables of every experiment that lists it."""
    return [
        f"results/tables/{name}/{table}.parquet"
        for name in figure_experiments(figure)
        for table in registry.figure(figure).tables
    ]


def figure_code(figure, claims=False):
    """The functions a figure job runs (its statistic, drawing and findings), or a scorecard job (its
    statistic and its claims)."""
    entry = registry.figure(figure)
    if claims:
        return (entry.compute, *(c.evaluate for c in registry.claims_of(figure)))
    return (entry.compute, entry.draw, entry.findings)


def scorecard_figures():
    """The figures of this config that have registered claims."""
    claimed = {c.figure for c in registry.CLAIMS.values()}
    return [fig for fig in all_figure_names() if fig in claimed]


def all_figure_names():
    return sorted(
        {
            fig
            for exp in config["experiments"].values()
            for fig in exp.get("figures", [])
        }
    )


def all_figures():
    return [
        f"results/figures/{fig}.{ext}"
        for fig in all_figure_names()
        for ext in ("png", "pdf")
    ]


def table_source(run, table):
    """Where one run's rows of a table come from: the training job, or a metric or summary job."""
    folder = "runs" if registry.table(table).stage == "train" else "metrics"
    return f"results/{folder}/{run}/{table}.parquet"


# Memory (MB) and run time (minutes) of one job's first attempt, a property of the run's data set
# (registry.Dataset); a retry (`retries: 1` on the training and metric rules, for a job killed for memory
# or time) gets twice as much.
def train_mem_mb(wildcards, attempt):
    """What the job will hold (memorization.memory), more on a retry."""
    return plan.training_memory_mb(RUNS[wildcards.run]) * attempt


def metric_mem_mb(wildcards, attempt):
    settings = configuration.metric_settings(
        config, wildcards.table, RUNS[wildcards.run]["dataset"]
    )
    return (
        plan.metric_memory_mb(wildcards.table, RUNS[wildcards.run], settings) * attempt
    )


def runtime(wildcards, attempt):
    return registry.DATASETS[RUNS[wildcards.run]["dataset"]].job_minutes * attempt


def raw_files(dataset):
    """The raw files of a data set under data_root that exist (none for digits, none before a download)."""
    paths = [
        os.path.join(config["data_root"], f) for f in registry.DATASETS[dataset].files
    ]
    return [p for p in paths if os.path.exists(p)]


def run_dataset(wildcards):
    return f"results/data/{configuration.dataset_id(RUNS[wildcards.run])}.npz"
