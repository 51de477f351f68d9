# Job script of rule examples.
import sys
from pathlib import Path

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)

from memorization.jobs import examples

examples(snakemake.params.spec, snakemake.input.dataset, str(Path(snakemake.input.run).parent), snakemake.output[0])
