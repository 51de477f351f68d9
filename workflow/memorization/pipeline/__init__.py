"""The pipeline, the top layer: what assembles the package into a workflow and a command line. One function
per workflow job (`jobs`), the fingerprints of the code each job runs (`fingerprint`), the cost plan and the
time a run took (`plan`, `run_time`), the command line (`cli`), what an interrupt of Snakemake does to its
jobs (`interrupt`) and the README's generated sections (`readme`). It loads the built-in papers."""
