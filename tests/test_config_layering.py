"""How configs layer: config.yaml under settings-only configs, stand-alone experiment files over the built-in
and per-data-set defaults, `base:` chains, `--config key=value` on any config."""

import copy

import pytest
import yaml

from memorization import config as S

from .conftest import ROOT, dry_run_jobs, snakemake, write_config

DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())
PAPER = ROOT / "configs" / "paper.yaml"


def load(given, workdir):
    return S.load_config(given, workdir=workdir, repository=ROOT)


def test_config_overrides_alone_change_the_default(tmp_path):
    config = load({"device": "cpu", "download": "true"}, tmp_path)  # "true": how Snakemake hands it over
    assert config.values["device"] == "cpu" and config.values["download"] is True
    assert config.experiments.keys() == DEFAULT["experiments"].keys()


def test_the_default_with_config_device_cpu_builds_its_dag(tmp_path):
    """`snakemake -n --config device=cpu`, no config file given: config.yaml with that change."""
    cmd = ["-n", "--config", "device=cpu", "download=true"]
    out = snakemake(tmp_path, *cmd, config=None, configfile=False).output
    assert "train" in out and "results/config/tables/difficulty/examples.parquet" in out


def test_a_file_of_digits_experiments_gets_the_defaults_metric_settings(tmp_path):
    mine = {
        "experiments": {
            "mine": {
                "spec": {"epochs": 3},
                "grid": {"label_noise": ["none", "random"]},
                "tables": ["training", "csr", "sensitivity"],
            }
        }
    }
    config = load(mine, tmp_path)
    default = load({}, tmp_path)
    assert list(config.experiments) == ["mine"]  # stands alone: none of config.yaml's experiments
    for family in ("csr", "sensitivity", "class_sensitivity"):
        assert config.metric_settings(family, "digits") == default.metric_settings(family, "digits")
    csr = config.metric_settings("csr", "digits")
    assert (csr["r"], csr["max_iter"], csr["points"]) == (8.0, 20, 150)  # not the paper's 0.3 / 100 / all
    (run, _) = config.experiments["mine"]
    assert run.width == 256  # the digits width, not the paper's 4096 on a CPU


def test_the_paper_config_gets_none_of_the_digits_scale_values(tmp_path):
    config = load(yaml.safe_load(PAPER.read_text()), tmp_path)
    experiments = config.experiments
    runs = [r for runs in experiments.values() for r in runs]
    assert len(runs) > 100 and {r.dataset for r in runs} == {"mnist", "mnist14", "cifar10"}
    assert {r.width for r in experiments["difficulty"]} == {4096}  # no width stated: the paper's, not 256
    adversarial = [r for r in runs if r.regularizer == "dropout_adversarial"]
    assert adversarial and all((r.adversarial_r, r.adversarial_alpha) == (0.3, 0.25) for r in adversarial)
    assert {r.cnn_dense for r in runs if r.arch == "cnn"} == {(384, 192)}
    for dataset in ("mnist", "mnist14", "cifar10"):
        csr = config.metric_settings("csr", dataset)
        assert (csr["r"], csr["alpha"], csr["beta"], csr["max_iter"]) == (0.3, 0.25, 0.2, 100)
        assert config.metric_settings("sensitivity", dataset)["stride"] == 2


def test_a_config_builds_on_its_base_and_can_drop_an_inherited_experiment(tmp_path):
    write_config(
        tmp_path,
        {
            "base": "config.yaml",
            "device": "cpu",
            "experiments": {"difficulty": None, "csr_random": {"seeds": 3}, "extra": {"spec": {"epochs": 2}}},
        },
        name="middle.yaml",
    )
    config = load({"base": "middle.yaml", "experiments": {"extra": {"seeds": 2}}}, tmp_path)
    names = set(config.experiments)
    assert "difficulty" not in names and {"extra", "csr_random", "capacity"} <= names
    assert config.values["experiments"]["csr_random"]["seeds"] == 3  # merged key by key
    assert config.values["experiments"]["csr_random"]["grid"] == DEFAULT["experiments"]["csr_random"]["grid"]
    assert config.values["experiments"]["extra"] == {"spec": {"epochs": 2}, "seeds": 2}
    assert config.values["device"] == "cpu"


def test_base_mistakes_are_named(tmp_path):
    with pytest.raises(S.ConfigError, match="'nowhere.yaml' not found in the working directory"):
        S.load_config({"base": "nowhere.yaml", "experiments": {}}, workdir=tmp_path, repository=ROOT)
    write_config(tmp_path, {"base": "b.yaml"}, name="a.yaml")
    write_config(tmp_path, {"base": "a.yaml"}, name="b.yaml")
    with pytest.raises(S.ConfigError, match="in a cycle"):
        S.load_config({"base": "a.yaml"}, workdir=tmp_path, repository=ROOT)
    (tmp_path / "broken.yaml").write_text("experiments:\n  e:\n    spec: {width: 8\n")
    with pytest.raises(S.ConfigError, match=r"broken.yaml, line 4, column 1: not valid YAML"):
        S.load_config({"base": "broken.yaml"}, workdir=tmp_path, repository=ROOT)


def test_command_line_text_becomes_numbers_where_the_schema_wants_them(tmp_path):
    given = {
        "experiments": {"e": {"spec": {"width": "8", "lr": "0.5"}, "seeds": "2"}},
        "metrics": {"csr": {"r": "4", "splits": ["val"]}},
    }
    config = load(given, tmp_path)
    assert config.values["experiments"]["e"] == {"spec": {"width": 8, "lr": 0.5}, "seeds": 2}
    assert config.metric_settings("csr", "digits")["r"] == 4.0
    with pytest.raises(S.ConfigError, match="config key device"):
        load({"device": "gpu"}, tmp_path)


def test_overrides_on_the_paper_config_through_snakemake(tmp_path):
    """`--configfile configs/paper.yaml --config download=true metrics=...`: validated and applied."""
    jobs = dry_run_jobs(tmp_path, PAPER, "--config", "download=true", "metrics={csr: {r: 4}}")
    assert any(rule == "train" for rule, _ in jobs) and not any("digits" in out for _, out in jobs)


def test_integer_and_float_spellings_of_a_metric_setting_are_one_setting(tmp_path):
    a = load(copy.deepcopy({"metrics": {"csr": {"r": 8}}}), tmp_path)
    b = load(copy.deepcopy({"metrics": {"csr": {"r": 8.0}}}), tmp_path)
    assert a.metric_settings("csr", "digits") == b.metric_settings("csr", "digits")
    assert isinstance(a.metric_settings("csr", "digits")["r"], float)


def test_the_paper_config_on_mlxtends_mnist_keeps_the_papers_settings(tmp_path):
    """configs/paper-mnist5k.yaml: the paper's MNIST experiments on mnist5k (Figs 3-4 on mnist5k14), its
    models and metric settings unchanged, the CIFAR-10 experiments untouched."""
    paper = load(yaml.safe_load(PAPER.read_text()), tmp_path).experiments
    config = load(yaml.safe_load((ROOT / "configs" / "paper-mnist5k.yaml").read_text()), tmp_path)
    small = config.experiments
    assert small.keys() == paper.keys()
    swap = {"mnist": "mnist5k", "mnist14": "mnist5k14", "cifar10": "cifar10"}
    for name, runs in paper.items():
        assert {swap[r.dataset] for r in runs} == {r.dataset for r in small[name]}, name
    width = {r.width for r in small["capacity"]}
    assert width == {r.width for r in paper["capacity"]} and 4096 in width
    assert config.metric_settings("csr", "mnist5k")["r"] == 0.3  # the paper's, not mnist5k's CPU defaults
    assert config.metric_settings("sensitivity", "mnist5k14")["stride"] == 2
    assert max(r.train_size or 4000 for r in small["dataset_size"]) <= 4000


def test_a_nested_config_override_changes_one_value_and_keeps_the_rest():
    """`--config 'experiments={difficulty: {seeds: 3}}'` (Snakemake hands the --config values over apart):
    merged over the default key by key, never replacing the default."""
    over = {"experiments": {"difficulty": {"seeds": 3}}}
    config = S.load_config({}, overrides=over, workdir=ROOT, repository=ROOT).values
    assert config["experiments"].keys() == DEFAULT["experiments"].keys()
    assert config["experiments"]["difficulty"]["seeds"] == 3
    assert config["experiments"]["difficulty"]["spec"] == DEFAULT["experiments"]["difficulty"]["spec"]
    # over a --configfile, the same override merges over that file, and config.yaml stays out
    mine = {"experiments": {"difficulty": {"spec": {"epochs": 2}, "seeds": 5}}}
    config = S.load_config(mine, overrides=over, workdir=ROOT, repository=ROOT).values
    assert list(config["experiments"]) == ["difficulty"] and config["experiments"]["difficulty"]["seeds"] == 3
    # `--config base=FILE` stands on that file
    config = S.load_config({}, overrides={"base": "configs/digits.yaml"}, workdir=ROOT, repository=ROOT).values
    assert config["defaults"]["dataset"] == "digits" and "dataset" not in config["experiments"]["difficulty"]["spec"]


def test_a_nested_override_through_snakemake_plans_the_default(tmp_path):
    def totals(*cmd):
        out = snakemake(tmp_path, "-n", *cmd, config=None, configfile=False).output
        return next(line for line in out.splitlines() if line.startswith("total"))

    assert totals("--config", "experiments={difficulty: {seeds: 3}}") == totals()
