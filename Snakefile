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


# `snakemake --report` of a partial run: Snakemake refuses a report whose DAG has a file marked for it that
# does not exist yet, and tells a Snakefile nothing of --report, so the command line says it. The target is
# then what has been drawn so far (memorization.cli.report_targets); a run's own targets otherwise.
REPORTING = (
    any(arg == "--report" or arg.startswith("--report=") for arg in sys.argv)
    and "--report-after-run" not in sys.argv
)


rule all:
    default_target: True
    input:
        report_targets(config, Path("results"))
        if REPORTING
        else [
            all_tables(),
            all_figures(),
            "results/findings.html" if all_figure_names() else [],
            "results/scorecard.md" if scorecard_figures() else [],
        ],
