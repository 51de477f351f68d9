# Job script of rule scorecard.
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)

from memorization.jobs import scorecard

scorecard(
    snakemake.params.inputs,
    snakemake.output.parquet,
    snakemake.output.md,
    snakemake.output.html,
    snakemake.params.analyses,
)
