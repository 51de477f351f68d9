# Job script of rule train. The device and the lock directory are execution settings read from the config
# on purpose (not params): moving a run from CPU to GPU must not count as a change of its spec.
import os
import sys

# the library, workflow/ beside this script: importable without an install or PYTHONPATH (--sdm conda clears it)
sys.path.insert(0, os.path.dirname(snakemake.scriptdir))
from memorization.jobs import log_to  # noqa: E402

log_to(snakemake.log[0], "a")  # append: a resumed job keeps its history

from memorization import registry
from memorization.configuration import expand, run_labels
from memorization.jobs import train

# the run's name for a person, from the config (not a param: a new run in its experiment must not rerun it);
# the config's analyses first, whose data sets the experiments may use
registry.load_analyses(snakemake.config.get("analyses") or [])
label = run_labels(expand(snakemake.config)).get(snakemake.wildcards.run, "")

train(
    snakemake.params.spec,
    snakemake.input.dataset,
    manifest_out=snakemake.output.manifest,
    training_out=snakemake.output.training,
    convergence_out=snakemake.output.convergence,
    device=snakemake.config["device"],
    lock_dir=snakemake.config["gpu_lock_dir"],
    threads=snakemake.threads,
    version=snakemake.params.code,
    label=label,
)
