rule train:
    """All seeds of one configuration in one job, on one leased GPU when there is one. Resumes after a kill
    from results/runs/{run}/state.pt (deliberately not an output, so Snakemake leaves it in place).
    """
    input:
        dataset=run_dataset,
    output:
        spec="results/runs/{run}/spec.json",
        training="results/runs/{run}/training.parquet",
        convergence="results/runs/{run}/convergence.parquet",
    log:
        "results/logs/train/{run}.log",
    benchmark:
        "results/benchmarks/train/{run}.tsv"
    conda:
        "../envs/memorization.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        spec=lambda w: RUNS[w.run],
        code=code("train"),
    script:
        "../workflow/scripts/train.py"
