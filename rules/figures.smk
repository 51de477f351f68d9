rule figure:
    """A paper figure, drawn from the tables only."""
    input:
        lambda w: [
            f"results/tables/{name}/{table}.parquet"
            for name in figure_experiments(w.figure)
            for table in FIGURE_TABLES[w.figure]
        ],
    output:
        png=report(
            "results/figures/{figure}.png",
            caption="../workflow/report/figure.rst",
            category="Figures",
        ),
        pdf="results/figures/{figure}.pdf",
    log:
        "results/logs/figures/{figure}.log",
    wildcard_constraints:
        figure="|".join(FIGURE_TABLES),
    localrule: True
    conda:
        "../envs/memorization.yaml"
    script:
        "../workflow/scripts/figure.py"
