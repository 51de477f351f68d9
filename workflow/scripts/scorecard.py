# Job script of rule scorecard.
import os
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
# the library, workflow/ beside this script: importable without an install or PYTHONPATH (--sdm conda clears it)
sys.path.insert(0, os.path.dirname(snakemake.scriptdir))

from memorization.jobs import scorecard

scorecard(
    snakemake.params.inputs,
    snakemake.output.parquet,
    snakemake.output.md,
    snakemake.output.html,
    snakemake.params.analyses,
)
