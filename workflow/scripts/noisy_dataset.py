# Job script of rule noisy_dataset: unpack `snakemake`, call the library.
import os
import sys

# the library, workflow/ beside this script: importable without an install or PYTHONPATH (--sdm conda clears it)
sys.path.insert(0, os.path.dirname(snakemake.scriptdir))
from memorization.pipeline.jobs import log_to  # noqa: E402

log_to(snakemake.log[0])  # its exception too, even on a full disk

from memorization.pipeline.jobs import make_dataset

make_dataset(snakemake.params.spec, snakemake.input.clean, snakemake.output[0], snakemake.params.analyses)
