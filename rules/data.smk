rule dataset:
    """The clean train/validation splits of one registered data set, read once. Its raw files are its inputs
    where they exist (not before a download), so the cache is rebuilt when they change.
    """
    input:
        lambda w: raw_files(w.name),
    output:
        "results/data/clean/{name}.npz",
    log:
        "results/logs/data/clean/{name}.log",
    wildcard_constraints:
        name=one_of(catalog.DATASETS),
    localrule: True  # on a cluster: on the submitting host, which reaches the internet (download: true)
    conda:
        "../envs/memorization.yaml"
    params:
        code=lambda w: code("clean_dataset", catalog.DATASETS[w.name].load),
        analyses=ANALYSES,
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
        code=code("make_dataset"),
        analyses=ANALYSES,
    script:
        "../workflow/scripts/noisy_dataset.py"
