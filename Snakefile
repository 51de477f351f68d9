# Arpit et al. 2017, "A Closer Look at Memorization in Deep Networks", as a workflow.
#   snakemake --cores 8 --resources gpu=2            # the embedded digits default (config.yaml)
#   snakemake --configfile configs/paper.yaml ...    # paper scale on GPUs
# The DAG: dataset → noisy dataset → train → tables → figures. Each stage is in rules/; the science is
# in the `memorization` package under workflow/.

from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


# No `configfile:` directive: rules/common.smk layers the configs itself (docs/design.md), so that
# `--configfile configs/paper.yaml` runs the paper's experiments only, while `--config key=value` alone
# changes config.yaml.


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/metrics.smk"
include: "rules/tables.smk"
include: "rules/figures.smk"


rule all:
    default_target: True
    input:
        all_tables(),
        all_figures(),
        "results/findings.html" if all_figure_names() else [],
        "results/scorecard.md" if scorecard_figures() else [],
