rule metric:
    """One metric family at every checkpoint of one run, for all its seeds. Its settings arrive through
    params, so changing e.g. a LASS setting reruns only the csr jobs."""
    input:
        dataset=run_dataset,
        run="results/runs/{run}/spec.json",
    output:
        "results/metrics/{run}/{family}.parquet",
    log:
        "results/logs/metrics/{run}/{family}.log",
    wildcard_constraints:
        family="sensitivity|class_sensitivity|csr|filters",
    conda:
        "../envs/memorization.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        spec=lambda w: RUNS[w.run],
        settings=lambda w: specs.metric_settings(config, w.family),
    script:
        "../workflow/scripts/metric.py"


rule gini:
    """Gini coefficient of the loss sensitivity over a run's training examples, per checkpoint."""
    input:
        "results/metrics/{run}/sensitivity.parquet",
    output:
        "results/metrics/{run}/gini.parquet",
    log:
        "results/logs/metrics/{run}/gini.log",
    localrule: True
    conda:
        "../envs/memorization.yaml"
    script:
        "../workflow/scripts/gini.py"
