rule noisy_dataset:
    """One (possibly noisy) data set as an array-only .npz, shared by every run that trains on it."""
    output:
        "results/data/{dataset}.npz",
    log:
        "results/logs/data/{dataset}.log",
    conda:
        "../envs/memorization.yaml"
    params:
        spec=lambda w: DATASETS[w.dataset],
    script:
        "../workflow/scripts/noisy_dataset.py"
