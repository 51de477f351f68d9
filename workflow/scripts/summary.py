# Job script of rule summary.
import os
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
# the library, workflow/ beside this script: importable without an install or PYTHONPATH (--sdm conda clears it)
sys.path.insert(0, os.path.dirname(snakemake.scriptdir))

from memorization.jobs import summary

summary(snakemake.wildcards.table, snakemake.input[0], snakemake.output[0], snakemake.params.analyses)
