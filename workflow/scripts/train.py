# Job script of rule train. The device and the lock directory are execution settings read from the config
# on purpose (not params): moving a run from CPU to GPU must not count as a change of its spec.
import os
import sys

# the library, workflow/ beside this script: importable without an install or PYTHONPATH (--sdm conda clears it)
sys.path.insert(0, os.path.dirname(snakemake.scriptdir))
from memorization.pipeline.jobs import log_to  # noqa: E402

log_to(snakemake.log[0], "a")  # append: a resumed job keeps its history

from memorization.pipeline.jobs import train

train(
    spec=snakemake.params.spec,
    dataset=snakemake.input.dataset,
    manifest_out=snakemake.output.manifest,
    training_out=snakemake.output.training,
    convergence_out=snakemake.output.convergence,
    device=snakemake.config["device"],
    tf32=snakemake.config["tf32"],
    lock_dir=snakemake.config["gpu_lock_dir"],
    threads=snakemake.threads,
    version=snakemake.params.code,
    label=snakemake.config["run_labels"].get(snakemake.wildcards.run, ""),  # its name for a person, not a param
    tensorboard=snakemake.config["tensorboard"],
)
