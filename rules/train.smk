rule train:
    """All seeds of one configuration in one job, on one leased GPU when there is one. Resumes after a kill
    from results/runs/{run}/state.pt (deliberately not an output, so Snakemake leaves it in place).
    """
    input:
        dataset=run_dataset,
    output:
        manifest="results/runs/{run}/manifest.json",
        training="results/runs/{run}/training.parquet",
        convergence="results/runs/{run}/convergence.parquet",
    log:
        "results/logs/train/{run}.log",
    benchmark:
        TRAIN_BENCHMARK
    retries: 1
    conda:
        "../envs/memorization.yaml"
    threads: 1  # the job sets torch to this many threads
    resources:
        gpu=1,
        mem_mb=train_mem_mb,
        runtime=runtime,
    params:
        spec=lambda w: RUNS[w.run],
        code=code("train"),
    script:
        "../workflow/scripts/train.py"
