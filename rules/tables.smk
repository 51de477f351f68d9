rule experiment_table:
    """One contract table of one experiment: its runs' rows with the identity columns, plus provenance."""
    input:
        lambda w: [
            table_source(spec.run_id, w.table) for spec in EXPERIMENTS[w.experiment]
        ],
    output:
        "results/tables/{experiment}/{table}.parquet",
    log:
        "results/logs/tables/{experiment}/{table}.log",
    localrule: True
    conda:
        "../envs/memorization.yaml"
    params:
        specs=lambda w: {
            spec.run_id: spec.as_dict() for spec in EXPERIMENTS[w.experiment]
        },
        figures=lambda w: config["experiments"][w.experiment].get("figures", []),
        columns=lambda w: catalog.table(w.table).dtypes(),
        code=code("experiment_table"),
        analyses=ANALYSES,
    script:
        "../workflow/scripts/experiment_table.py"
