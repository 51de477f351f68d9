# Job script of rule metric. Device and lock directory: execution settings, read from the config on purpose
# (not params): moving a run from CPU to GPU must not count as a change of its results.
import os
import sys
from pathlib import Path

# the library, workflow/ beside this script: importable without an install or PYTHONPATH (--sdm conda clears it)
sys.path.insert(0, os.path.dirname(snakemake.scriptdir))
from memorization.pipeline.jobs import log_to  # noqa: E402

log_to(snakemake.log[0])  # its exception too, even on a full disk

from memorization.pipeline.jobs import metric

metric(
    table=snakemake.wildcards.table,
    spec=snakemake.params.spec,
    dataset=snakemake.input.dataset,
    run_dir=str(Path(snakemake.input.run).parent),
    settings=snakemake.params.settings,
    out=snakemake.output[0],
    device=snakemake.config["device"],
    lock_dir=snakemake.config["gpu_lock_dir"],
    threads=snakemake.threads,
    analyses=snakemake.params.analyses,
    version=snakemake.params.code,
    tensorboard=snakemake.config["tensorboard"],
)
