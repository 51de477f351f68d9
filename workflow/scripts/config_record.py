# Job script of rule config_record.
import os
import sys

# the library, workflow/ beside this script: importable without an install or PYTHONPATH (--sdm conda clears it)
sys.path.insert(0, os.path.dirname(snakemake.scriptdir))
from memorization.pipeline.jobs import log_to  # noqa: E402

log_to(snakemake.log[0])  # its exception too, even on a full disk

from memorization.results.checks import write_config_record

write_config_record(snakemake.params.values, snakemake.params.source, snakemake.output[0])
