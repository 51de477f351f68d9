# Helpers shared by the rules: config validation, and the maps from ids to specs that the rules read.
import os
import sys

from snakemake.exceptions import WorkflowError

# The library lives in workflow/; jobs (separate processes) find it through PYTHONPATH, so the workflow
# also runs from a checkout that was not pip-installed (e.g. in a conda env built from envs/).
LIBRARY = os.path.join(workflow.basedir, "workflow")
sys.path.insert(0, LIBRARY)
# (Set, not required: so no `envvars:` directive.)
os.environ.update(
    PYTHONPATH=os.pathsep.join(filter(None, [LIBRARY, os.environ.get("PYTHONPATH")]))
)

from memorization import spec as specs  # noqa: E402
from memorization.figures import FIGURE_TABLES  # noqa: E402
from memorization.tables import RUN_TABLES, TABLE_COLUMNS  # noqa: E402

try:
    config = specs.validate(config)
except specs.ConfigError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None

# experiment → [resolved run spec]; run id → spec; data set id → its data keys
EXPERIMENTS = specs.expand(config)
RUNS = {specs.run_id(s): s for runs in EXPERIMENTS.values() for s in runs}
DATASETS = {specs.dataset_id(s): specs.dataset_spec(s) for s in RUNS.values()}


wildcard_constraints:
    run="[0-9a-f]{12}",
    dataset="[a-z0-9]+-[0-9a-f]{12}",
    experiment="|".join(EXPERIMENTS),
    table="|".join(TABLE_COLUMNS),


def experiment_tables(name):
    """Tables an experiment writes: those it asks for plus those its figures read."""
    exp = config["experiments"][name]
    wanted = list(exp.get("tables", ["training"]))
    for fig in exp.get("figures", []):
        wanted += [t for t in FIGURE_TABLES[fig] if t not in wanted]
    return wanted


def all_tables():
    return [
        f"results/tables/{name}/{table}.parquet"
        for name in EXPERIMENTS
        for table in experiment_tables(name)
    ]


def figure_experiments(figure):
    return [
        name
        for name, exp in config["experiments"].items()
        if figure in exp.get("figures", [])
    ]


def all_figures():
    figures = sorted(
        {
            fig
            for exp in config["experiments"].values()
            for fig in exp.get("figures", [])
        }
    )
    return [f"results/figures/{fig}.{ext}" for fig in figures for ext in ("png", "pdf")]


def table_source(run, table):
    """Where one run's rows of a table come from: the training job or a metric job."""
    folder = "runs" if table in RUN_TABLES else "metrics"
    return f"results/{folder}/{run}/{table}.parquet"


def run_dataset(wildcards):
    return f"results/data/{specs.dataset_id(RUNS[wildcards.run])}.npz"
