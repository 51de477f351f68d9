rule figure:
    """A registered figure, drawn from the tables only, and what this run shows (its findings)."""
    input:
        lambda w: [
            f"results/tables/{name}/{table}.parquet"
            for name in figure_experiments(w.figure)
            for table in registry.figure(w.figure).tables
        ],
    output:
        png=report(
            "results/figures/{figure}.png",
            caption="../workflow/report/figure.rst",
            category="Figures",
        ),
        pdf="results/figures/{figure}.pdf",
        findings="results/figures/{figure}.findings.txt",
    log:
        "results/logs/figures/{figure}.log",
    wildcard_constraints:
        figure=one_of(registry.FIGURES),
    localrule: True
    conda:
        "../envs/memorization.yaml"
    params:
        caption=lambda w: registry.figure(w.figure).caption,
        stamp=config["stamp_findings"],
        code=lambda w: code("figure", registry.figure(w.figure).draw),
        analyses=ANALYSES,
    script:
        "../workflow/scripts/figure.py"


rule findings:
    """Every figure's findings (what this run shows) on one page of the report."""
    input:
        [f"results/figures/{fig}.findings.txt" for fig in all_figure_names()],
    output:
        report("results/findings.html", category="What this run shows"),
    log:
        "results/logs/findings.log",
    localrule: True
    conda:
        "../envs/memorization.yaml"
    params:
        figures=all_figure_names(),
        code=code("findings_page"),
    script:
        "../workflow/scripts/findings.py"
