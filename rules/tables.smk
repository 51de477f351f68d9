rule experiment_table:
    """One contract table of one experiment: its runs' rows with the identity columns, plus provenance."""
    input:
        lambda w: [
            table_source(spec.run_id, w.table) for spec in EXPERIMENTS[w.experiment]
        ],
    output:
        f"{OUT}/tables/{{experiment}}/{{table}}.parquet",
    log:
        f"{OUT}/logs/tables/{{experiment}}/{{table}}.log",
    localrule: True
    conda:
        "../envs/memorization.yaml"
    params:
        specs=lambda w: {
            spec.run_id: spec.as_dict() for spec in EXPERIMENTS[w.experiment]
        },
        figures=lambda w: config["experiments"][w.experiment].get("figures", []),
        columns=lambda w: catalog.table(w.table).dtypes(),
        settings=lambda w: CONFIG.settings_of(w.experiment),
        code=code("experiment_table"),
        analyses=ANALYSES,
    script:
        "../workflow/scripts/experiment_table.py"


rule config_record:
    """The config that made this folder's results, resolved (every default filled in), and the file it was
    read from: what `memorization runs`, `show` and `report` read when they are given no config, and what
    keeps a second config of the same name from writing over these results."""
    output:
        f"{OUT}/config.yaml",
    log:
        f"{OUT}/logs/config.log",
    priority: 100  # first: `memorization runs` finds this config from it while the run goes on
    localrule: True
    conda:
        "../envs/memorization.yaml"
    params:
        values=CONFIG.values,
        source=CONFIG.source,
    script:
        "../workflow/scripts/config_record.py"
