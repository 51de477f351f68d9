rule train:
    """All seeds of one configuration in one job, on one leased GPU when there is one. Its checkpoints,
    evaluations and presentations are outputs (a run folder on a storage plugin or a non-shared file system is
    complete); they are written to results/runs/{run}/unfinished/ while it trains and moved into place when it
    ends, so a kill leaves its resume points (there and state.pt, deliberately not outputs) where Snakemake,
    which deletes a job's outputs before running it, does not look.
    """
    input:
        dataset=run_dataset,
    output:
        manifest="results/runs/{run}/manifest.json",
        training="results/runs/{run}/training.parquet",
        convergence="results/runs/{run}/convergence.parquet",
        checkpoints=directory("results/runs/{run}/checkpoints"),
        evals=directory("results/runs/{run}/evals"),
        presentations=directory("results/runs/{run}/presentations"),
    log:
        "results/logs/train/{run}.log",
    benchmark:
        TRAIN_BENCHMARK
    conda:
        "../envs/memorization.yaml"
    threads: 1  # the job sets torch to this many threads
    resources:
        gpu=1,
        mem_mb=train_mem_mb,
        runtime=runtime,
    params:
        spec=lambda w: RUNS[w.run].as_dict(),
        code=code("train"),
    script:
        "../workflow/scripts/train.py"
