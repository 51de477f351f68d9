# Job script of rule noisy_dataset: unpack `snakemake`, call the library.
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)

from memorization.jobs import make_dataset

make_dataset(snakemake.params.spec, snakemake.input.clean, snakemake.output[0], snakemake.params.analyses)
