# Job script of rule findings.
import os
import sys

# the library, workflow/ beside this script: importable without an install or PYTHONPATH (--sdm conda clears it)
sys.path.insert(0, os.path.dirname(snakemake.scriptdir))
from memorization.pipeline.jobs import log_to  # noqa: E402

log_to(snakemake.log[0])  # its exception too, even on a full disk

from memorization.pipeline.jobs import findings_page

findings_page(
    snakemake.params.figures,
    list(snakemake.input.findings),
    list(snakemake.input.images),
    snakemake.output[0],
    snakemake.input.card[0] if snakemake.input.card else None,
    snakemake.params.analyses,
)
