# Job script of rule summary.
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)

from memorization.jobs import summary

summary(snakemake.wildcards.table, snakemake.input[0], snakemake.output[0], snakemake.params.analyses)
