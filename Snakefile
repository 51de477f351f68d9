# Arpit et al. 2017, "A Closer Look at Memorization in Deep Networks", as a workflow.
#   snakemake --cores 8 --resources gpu=2            # the embedded digits default (config.yaml)
#   snakemake --configfile configs/paper.yaml ...    # paper scale on GPUs
# The DAG: dataset → noisy dataset → train → tables → figures. Each stage is in rules/; the science is
# in the `memorization` package under workflow/ (docs/design.md).

from pathlib import Path

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


# When a run starts (never a dry run): the code each job's fingerprint stands for, into results/code/, so that
# `memorization why RUN` can say which function changed when an edit reruns a job; and an interrupt of
# Snakemake alone (kill -INT) stops its jobs, as a Ctrl-C at the terminal does (pipeline/interrupt.py).
onstart:
    fingerprint.record(CODE_MAPS, "results/code")
    interrupt.stop_jobs_on_interrupt()


# `snakemake --report` of a partial run: Snakemake refuses a report whose DAG has a file marked for it that
# does not exist yet, and tells a Snakefile nothing of --report, so the command line says it. The target is
# then what has been drawn so far (memorization.pipeline.cli.report_targets); a run's own targets otherwise,
# and the tables to rebuild (rules/common.smk).
REPORTING = (
    any(arg == "--report" or arg.startswith("--report=") for arg in sys.argv)
    and "--report-after-run" not in sys.argv
)


rule all:
    default_target: True
    input:
        report_targets(CONFIG.figures, Path(OUT))
        if REPORTING
        else [
            rebuild_unusable_tables,
            room_for_the_runs,
            f"{OUT}/config.yaml",
            all_tables(),
            all_figures(),
            f"{OUT}/findings.html" if CONFIG.figures else [],
            f"{OUT}/scorecard.md" if scorecard_figures() else [],
        ],
