rule metric:
    """One metric table (catalog stage "metric") at the checkpoints or evaluations of one run, for all its
    seeds. Its settings arrive through params, and their hash is in its file name: a LASS setting of another
    value computes a table beside this one (only csr jobs), and switching back finds this one again.
    """
    input:
        dataset=run_dataset,
        run="results/runs/{run}/manifest.json",
        checkpoints="results/runs/{run}/checkpoints",
        evals="results/runs/{run}/evals",
        presentations="results/runs/{run}/presentations",
    output:
        "results/metrics/{run}/{table}.{settings}.parquet",
    log:
        "results/logs/metrics/{run}/{table}.{settings}.log",
    benchmark:
        METRIC_BENCHMARK
    wildcard_constraints:
        table=one_of(catalog.tables_of_stage("metric")),
    conda:
        "../envs/memorization.yaml"
    threads: 1  # the job sets torch to this many threads
    resources:
        gpu=lambda w: int(catalog.table(w.table).device),
        mem_mb=metric_mem_mb,
        runtime=runtime,
    params:
        spec=lambda w: RUNS[w.run].as_dict(),
        settings=metric_settings,
        columns=lambda w: catalog.table(w.table).dtypes(),
        code=lambda w: code("metric", *fingerprint.metric_implementations(w.table)),
        analyses=ANALYSES,
    script:
        "../workflow/scripts/metric.py"


rule summary:
    """A summary table (catalog stage "summary", e.g. the Gini coefficient of the loss sensitivity) of one
    run, computed from another of its tables."""
    input:
        lambda w: table_source(w.run, catalog.table(w.table).source),
    output:
        "results/metrics/{run}/{table}.{settings}.parquet",
    log:
        "results/logs/metrics/{run}/{table}.{settings}.log",
    wildcard_constraints:
        table=one_of(catalog.tables_of_stage("summary")),
    localrule: True
    conda:
        "../envs/memorization.yaml"
    params:
        code=lambda w: code("summary", catalog.table(w.table).compute),
        analyses=ANALYSES,
    script:
        "../workflow/scripts/summary.py"
