# Job script of rule experiment_table.
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)

from memorization.jobs import experiment_table

experiment_table(
    snakemake.wildcards.experiment,
    snakemake.wildcards.table,
    snakemake.params.specs,
    list(snakemake.input),
    snakemake.output[0],
    snakemake.params.figures,
    snakemake.params.analyses,
)
