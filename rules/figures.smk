rule figure:
    """A registered figure, drawn from the tables only, and what this run shows (its findings)."""
    input:
        lambda w: figure_inputs(w.figure),
    output:
        png=report(
            f"{OUT}/figures/{{figure}}.png",
            caption="../workflow/report/figure.rst",
            category="3. Figures",
        ),
        pdf=f"{OUT}/figures/{{figure}}.pdf",
        findings=f"{OUT}/figures/{{figure}}.findings.txt",
    log:
        f"{OUT}/logs/figures/{{figure}}.log",
    wildcard_constraints:
        figure=one_of(catalog.FIGURES),
    localrule: True
    conda:
        "../envs/memorization.yaml"
    params:
        caption=lambda w: catalog.figure(w.figure).caption,
        stamp=config["stamp_findings"],
        code=lambda w: code("figure", *figure_code(w.figure)),
        analyses=ANALYSES,
    script:
        "../workflow/scripts/figure.py"


rule findings:
    """Every figure, its findings (what this run shows) and its claims on one page, the scorecard at its top:
    for a browser and the report."""
    input:
        findings=[f"{OUT}/figures/{fig}.findings.txt" for fig in CONFIG.figures],
        images=[f"{OUT}/figures/{fig}.png" for fig in CONFIG.figures],
        card=[f"{OUT}/scorecard.parquet"] if scorecard_figures() else [],
    output:
        report(f"{OUT}/findings.html", category="2. What this run shows"),
    log:
        f"{OUT}/logs/findings.log",
    localrule: True
    conda:
        "../envs/memorization.yaml"
    params:
        figures=CONFIG.figures,
        code=code("findings_page"),
        analyses=ANALYSES,
    script:
        "../workflow/scripts/findings.py"


rule scorecard:
    """The reproduction scorecard: each claim of the paper tested on the tables of its figure."""
    input:
        [path for fig in scorecard_figures() for path in figure_inputs(fig)],
    output:
        parquet=f"{OUT}/scorecard.parquet",
        md=f"{OUT}/scorecard.md",
        html=report(f"{OUT}/scorecard.html", category="1. Reproduction scorecard"),
    log:
        f"{OUT}/logs/scorecard.log",
    localrule: True
    conda:
        "../envs/memorization.yaml"
    params:
        inputs={fig: figure_inputs(fig) for fig in scorecard_figures()},
        code=code(
            "scorecard",
            *(f for fig in scorecard_figures() for f in figure_code(fig, claims=True)),
        ),
        analyses=ANALYSES,
    script:
        "../workflow/scripts/scorecard.py"
