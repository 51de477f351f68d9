# Job script of rule figure.
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)

from memorization.jobs import figure

figure(
    snakemake.wildcards.figure,
    list(snakemake.input),
    snakemake.output.png,
    snakemake.output.findings,
    stamp=snakemake.params.stamp,
    analyses=snakemake.params.analyses,
)
