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
    conda:
        "../envs/memorization.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        spec=lambda w: RUNS[w.run],
    script:
        "../workflow/scripts/train.py"


rule examples:
    """Per-example correctness of one finished run at every evaluation, from its evaluation files. A rule of
    its own: only experiments that ask for the examples table pay for it."""
    input:
        dataset=run_dataset,
        run="results/runs/{run}/spec.json",
    output:
        "results/runs/{run}/examples.parquet",
    log:
        "results/logs/examples/{run}.log",
    conda:
        "../envs/memorization.yaml"
    params:
        spec=lambda w: RUNS[w.run],
    script:
        "../workflow/scripts/examples.py"
