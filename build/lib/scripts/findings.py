# Job script of rule findings.
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)

from memorization.jobs import findings_page

findings_page(snakemake.params.figures, list(snakemake.input), snakemake.output[0])
