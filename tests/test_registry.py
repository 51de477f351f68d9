"""The registries: the schema's allowed values derive from them, an analysis registered from outside the
package (a data set, a metric table, a figure with its claim) gets its jobs, table, figure and scorecard row
from every entry point, and the documented table contract is the registry's."""

import re
import shutil
import subprocess

import pandas as pd
import pytest
import torch

from memorization import catalog as registry
from memorization import config as S
from memorization.config.schema import schema
from memorization.results.tables import contract_markdown

from .conftest import ROOT, SNAKEMAKE, dry_run_jobs, snakemake, write_config

TOY = ROOT / "tests" / "data" / "toy_analysis.py"
CONFIG = {
    "analyses": ["toy_analysis.py"],
    "metrics": {"weight_norm": {"scale": 2}},
    "experiments": {
        "toy": {
            "spec": {
                "dataset": "small_digits",
                "train_size": 50,
                "width": 8,
                "epochs": 2,
                "checkpoints": {"unit": "epoch", "every": 1},
            },
            "seeds": 2,
            "tables": ["weight_norm"],
            "figures": ["fig_weight_norm"],
        }
    },
}


def test_allowed_values_come_from_the_registries():
    with pytest.raises(S.ConfigError) as err:
        S.load_config({"experiments": {"e": {"tables": ["nope"]}}})
    assert all(f'"{name}"' in str(err.value) for name in registry.TABLES)
    with pytest.raises(S.ConfigError) as err:
        S.load_config({"experiments": {"e": {"figures": ["fig99"]}}})
    assert '"fig11_regularizer_curves"' in str(err.value)
    with pytest.raises(S.ConfigError) as err:
        S.load_config({"experiments": {"e": {"spec": {"dataset": "svhn"}}}})
    assert all(f'"{name}"' in str(err.value) for name in registry.DATASETS)
    metric_keys = set(schema()["properties"]["metrics"]["properties"])
    assert metric_keys == {n for n, t in registry.TABLES.items() if t.settings is not None}


def test_registration_mistakes_are_refused():
    draw = lambda s: None
    with pytest.raises(ValueError, match="not registered"):
        registry.register_figure(registry.Figure("f", ("no_such_table",), "", compute=draw, draw=draw))
    with pytest.raises(ValueError, match="`draw` must be a function"):
        registry.register_figure(registry.Figure("f", ("training",), "", compute=draw, draw="m:f"))
    with pytest.raises(ValueError, match="figure 'fig99' is not registered"):
        registry.register_claim(registry.Claim("c", "fig99", "", "", "", draw))
    assert "f" not in registry.FIGURES and "c" not in registry.CLAIMS
    with pytest.raises(ValueError, match="needs `compute`"):
        registry.register_table(registry.Table("t", "metric", (), "run", ""))
    with pytest.raises(ValueError, match="identity columns already"):
        registry.register_table(registry.Table("t", "train", registry.columns(("seed", "int64", "")), "run", ""))
    assert "t" not in registry.TABLES


def test_every_entry_point_reads_the_analyses(tmp_path):
    """The config check and the cost plan know the analysis' data set, table and figure, as the workflow does."""
    shutil.copy(TOY, tmp_path)
    write_config(tmp_path, CONFIG)
    python = str(SNAKEMAKE.with_name("python"))
    check = subprocess.run(
        [python, "-m", "memorization", "check", "config.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert check.returncode == 0 and "valid: 1 experiments, 1 runs" in check.stdout, check.stderr
    plan = subprocess.run(
        [python, "-m", "memorization", "plan", "config.yaml", "--cache", str(tmp_path / "cal.json")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert plan.returncode == 0 and "metric:weight_norm" in plan.stdout, plan.stderr
    write_config(tmp_path, {**CONFIG, "analyses": ["nowhere.py"]})
    missing = subprocess.run(
        [python, "-m", "memorization", "check", "config.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert missing.returncode != 0 and "config key analyses: 'nowhere.py' is not a Python file" in missing.stderr


def test_a_data_set_that_returns_other_than_it_declares_is_refused():
    from memorization.engine.data import DataError, Split, check_declared, load_digits

    train, val, k = load_digits()
    registry.register_dataset(registry.Dataset("small", "m:f", 200, "", shape=(1, 8, 8), n_val=100))
    try:
        check_declared("small", Split(train.x[:200], train.y[:200]), Split(val.x[:100], val.y[:100]), k)
        check_declared("small", Split(train.x[:50], train.y[:50]), Split(val.x[:10], val.y[:10]), k)  # a partial copy
        with pytest.raises(DataError, match=r"1297 examples in its train split, declared n_train=200.*Correct its"):
            check_declared("small", train, Split(val.x[:100], val.y[:100]), k)
        with pytest.raises(DataError, match=r"images of shape \(1, 4, 8\), declared shape=\(1, 8, 8\)"):
            check_declared(
                "small", Split(train.x[:200, :, :4], train.y[:200]), Split(val.x[:100, :, :4], val.y[:100]), k
            )
        with pytest.raises(DataError, match="3 classes, declared n_classes=10"):
            check_declared("digits", train, val, 3)
    finally:
        del registry.DATASETS["small"]


def test_a_registered_analysis_gets_its_jobs_table_figure_and_claim(tmp_path):
    shutil.copy(TOY, tmp_path)
    write_config(tmp_path, CONFIG)
    planned = dry_run_jobs(tmp_path, None)
    assert re.search(r"/weight_norm\.[0-9a-f]{12}\.parquet$", [o for r, o in planned if r == "metric"][0])
    assert ("experiment_table", "results/config/tables/toy/weight_norm.parquet") in planned
    assert any(r == "figure" and "fig_weight_norm.png" in o for r, o in planned)

    snakemake(tmp_path)
    table = pd.read_parquet(tmp_path / "results/config/tables/toy/weight_norm.parquet")
    assert list(table.columns) == [*(c.name for c in registry.IDENTITY), "step", "norm"]
    assert len(table) == 2 * 3  # seeds x checkpoints (initialisation, epoch 1, epoch 2)
    run = table["run_id"].iloc[0]
    last = table[(table["seed"] == 1) & (table["step"] == table["step"].max())]["norm"].item()
    state = torch.load(sorted((tmp_path / "results/runs" / run / "checkpoints").glob("*.pt"))[-1], weights_only=True)
    assert last == pytest.approx(2 * float(state["params"]["fc0.weight"][1].norm()))  # the config's scale: 2
    assert (tmp_path / "results/config/figures/fig_weight_norm.png").stat().st_size > 5000
    findings = (tmp_path / "results/config/figures/fig_weight_norm.findings.txt").read_text()
    assert "largest norm" in findings
    # the claim is scored on the figure's own statistic: the same numbers as its findings, from the table
    per_seed = table.groupby(["seed", "step"])["norm"].mean().unstack(0)
    growth = per_seed.iloc[-1] / per_seed.iloc[0]
    value = f"last / first: {' '.join(f'{r:.4f}' for r in growth)}"
    assert value in findings
    card = pd.read_parquet(tmp_path / "results/config/scorecard.parquet").set_index("claim")
    assert card.loc["toy_norm_grows", "value"] == value
    assert bool(card.loc["toy_norm_grows", "holds"]) == bool((growth > 1).all())
    assert "| `toy_norm_grows` | fig_weight_norm |" in (tmp_path / "results/config/scorecard.md").read_text()

    # what a job runs of the analysis file is its code: a new unrelated function reruns nothing ...
    (tmp_path / "toy_analysis.py").write_text(TOY.read_text() + "\n\ndef unrelated():\n    return 1\n")
    assert "Nothing to be done" in snakemake(tmp_path, "-n").output
    # ... editing the metric reruns the metric and what reads it, not the data set or the training
    edited = TOY.read_text().replace('settings["scale"] * float', 'settings["scale"] * 1.0 * float')
    (tmp_path / "toy_analysis.py").write_text(edited)
    rules = sorted(r for r, _ in dry_run_jobs(tmp_path, None))
    assert rules == ["all", "experiment_table", "figure", "findings", "metric", "scorecard"]
    # ... and editing the claim reruns the scorecard and the findings page, which shows it
    (tmp_path / "toy_analysis.py").write_text(edited.replace("(g > 1).all()", "(g > 1.0).all()"))
    snakemake(tmp_path)
    (tmp_path / "toy_analysis.py").write_text(edited.replace("(g > 1).all()", "(g >= 1.0).all()"))
    assert sorted(r for r, _ in dry_run_jobs(tmp_path, None)) == ["all", "findings", "scorecard"]


def test_the_documented_table_contract_is_the_registry():
    text = (ROOT / "docs" / "tables.md").read_text()
    begin, end = "<!-- generated: memorization tables -->\n", "<!-- end of generated part -->"
    assert text[text.index(begin) + len(begin) : text.index(end)] == contract_markdown()
