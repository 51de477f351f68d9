# Job script of rule dataset. data_root and download are read from the config on purpose (not params):
# moving the data directory must not rebuild every data set.
import os
import sys

# the library, workflow/ beside this script: importable without an install or PYTHONPATH (--sdm conda clears it)
sys.path.insert(0, os.path.dirname(snakemake.scriptdir))
from memorization.pipeline.jobs import log_to  # noqa: E402

log_to(snakemake.log[0])  # its exception too, even on a full disk

from memorization.pipeline.jobs import clean_dataset

clean_dataset(
    snakemake.wildcards.name,
    snakemake.output[0],
    data_root=snakemake.config["data_root"],
    download=snakemake.config["download"],
    analyses=snakemake.params.analyses,
)
