# Job script of rule experiment_table.
import os
import sys

# the library, workflow/ beside this script: importable without an install or PYTHONPATH (--sdm conda clears it)
sys.path.insert(0, os.path.dirname(snakemake.scriptdir))
from memorization.pipeline.jobs import log_to  # noqa: E402

log_to(snakemake.log[0])  # its exception too, even on a full disk

from memorization.pipeline.jobs import experiment_table

experiment_table(
    snakemake.wildcards.experiment,
    snakemake.wildcards.table,
    snakemake.params.specs,
    list(snakemake.input),
    snakemake.output[0],
    snakemake.params.figures,
    snakemake.params.analyses,
    snakemake.params.settings,
)
