# Job script of rule figure.
import os
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
# the library, workflow/ beside this script: importable without an install or PYTHONPATH (--sdm conda clears it)
sys.path.insert(0, os.path.dirname(snakemake.scriptdir))

from memorization.jobs import figure

figure(
    snakemake.wildcards.figure,
    list(snakemake.input),
    snakemake.output.png,
    snakemake.output.findings,
    stamp=snakemake.params.stamp,
    analyses=snakemake.params.analyses,
)
