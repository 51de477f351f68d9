# Job script of rule gini.
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)

from memorization.jobs import gini

gini(snakemake.input[0], snakemake.output[0])
