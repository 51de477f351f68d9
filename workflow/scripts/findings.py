# Job script of rule findings.
import os
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
# the library, workflow/ beside this script: importable without an install or PYTHONPATH (--sdm conda clears it)
sys.path.insert(0, os.path.dirname(snakemake.scriptdir))

from memorization.jobs import findings_page

findings_page(snakemake.params.figures, list(snakemake.input), snakemake.output[0])
