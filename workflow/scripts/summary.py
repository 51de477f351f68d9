# Job script of rule summary.
import os
import sys

# the library, workflow/ beside this script: importable without an install or PYTHONPATH (--sdm conda clears it)
sys.path.insert(0, os.path.dirname(snakemake.scriptdir))
from memorization.pipeline.jobs import log_to  # noqa: E402

log_to(snakemake.log[0])  # its exception too, even on a full disk

from memorization.pipeline.jobs import summary

summary(
    snakemake.wildcards.table,
    snakemake.input[0],
    snakemake.output[0],
    snakemake.params.analyses,
    snakemake.params.code,
    f"results/runs/{snakemake.wildcards.run}" if snakemake.config["tensorboard"] else None,
)
