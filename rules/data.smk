rule dataset:
    """The clean train/validation splits of one data set (digits, MNIST, 14x14 MNIST, CIFAR-10), read once."""
    output:
        "results/data/clean/{name}.npz",
    log:
        "results/logs/data/clean/{name}.log",
    wildcard_constraints:
        name="digits|mnist|mnist14|cifar10",
    conda:
        "../envs/memorization.yaml"
    script:
        "../workflow/scripts/dataset.py"


rule noisy_dataset:
    """One (possibly noisy) data set as an array-only .npz, shared by every run that trains on it."""
    input:
        clean=lambda w: f"results/data/clean/{DATASETS[w.dataset]['dataset']}.npz",
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
