"""The registries: the schema's allowed values derive from them, an analysis registered from outside the
package gets its jobs, table and figure, and the documented table contract is the registry's."""

import shutil

import pandas as pd
import pytest
import torch

from memorization import registry
from memorization import spec as S
from memorization.tables import contract_markdown

from .conftest import ROOT, dry_run_jobs, snakemake, write_config

TOY = ROOT / "tests" / "data" / "toy_analysis.py"
CONFIG = {
    "analyses": ["toy_analysis.py"],
    "metrics": {"weight_norm": {"scale": 2}},
    "experiments": {
        "toy": {
            "spec": {"train_size": 50, "width": 8, "epochs": 2, "checkpoints": {"unit": "epoch", "every": 1}},
            "seeds": 2,
            "tables": ["weight_norm"],
            "figures": ["fig_weight_norm"],
        }
    },
}


def test_allowed_values_come_from_the_registries():
    with pytest.raises(S.ConfigError) as err:
        S.validate({"experiments": {"e": {"tables": ["nope"]}}})
    assert all(f'"{name}"' in str(err.value) for name in registry.TABLES)
    with pytest.raises(S.ConfigError) as err:
        S.validate({"experiments": {"e": {"figures": ["fig99"]}}})
    assert '"fig11_regularizer_curves"' in str(err.value)
    with pytest.raises(S.ConfigError) as err:
        S.validate({"experiments": {"e": {"spec": {"dataset": "svhn"}}}})
    assert all(f'"{name}"' in str(err.value) for name in registry.DATASETS)
    metric_keys = set(S.schema()["properties"]["metrics"]["properties"])
    assert metric_keys == {n for n, t in registry.TABLES.items() if t.settings is not None}


def test_registration_mistakes_are_refused():
    with pytest.raises(ValueError, match="not registered"):
        registry.register_figure(registry.Figure("f", ("no_such_table",), "m:f", ""))
    with pytest.raises(ValueError, match="needs `compute`"):
        registry.register_table(registry.Table("t", "metric", (), "run", ""))
    with pytest.raises(ValueError, match="identity columns already"):
        registry.register_table(registry.Table("t", "train", registry.columns(("seed", "int64", "")), "run", ""))
    assert "t" not in registry.TABLES


def test_a_registered_analysis_gets_its_jobs_table_and_figure(tmp_path):
    shutil.copy(TOY, tmp_path)
    write_config(tmp_path, CONFIG)
    planned = dry_run_jobs(tmp_path, None)
    assert [o for r, o in planned if r == "metric"][0].endswith("/weight_norm.parquet")
    assert ("experiment_table", "results/tables/toy/weight_norm.parquet") in planned
    assert any(r == "figure" and "fig_weight_norm.png" in o for r, o in planned)

    snakemake(tmp_path)
    table = pd.read_parquet(tmp_path / "results/tables/toy/weight_norm.parquet")
    assert list(table.columns) == [*(c.name for c in registry.IDENTITY), "step", "norm"]
    assert len(table) == 2 * 3  # seeds x checkpoints (initialisation, epoch 1, epoch 2)
    run = table["run_id"].iloc[0]
    last = table[(table["seed"] == 1) & (table["step"] == table["step"].max())]["norm"].item()
    state = torch.load(sorted((tmp_path / "results/runs" / run / "checkpoints").glob("*.pt"))[-1], weights_only=True)
    assert last == pytest.approx(2 * float(state["params"]["fc0.weight"][1].norm()))  # the config's scale: 2
    assert (tmp_path / "results/figures/fig_weight_norm.png").stat().st_size > 5000
    assert "largest norm" in (tmp_path / "results/figures/fig_weight_norm.findings.txt").read_text()

    # the analysis file is code the jobs run: editing it reruns its metric, not the training
    (tmp_path / "toy_analysis.py").write_text(TOY.read_text() + "\nEXTRA = 1\n")
    rules = sorted(r for r, _ in dry_run_jobs(tmp_path, None))
    assert rules == ["all", "experiment_table", "figure", "findings", "metric"]


def test_the_documented_table_contract_is_the_registry():
    text = (ROOT / "docs" / "tables.md").read_text()
    begin, end = "<!-- generated: python -m memorization.tables -->\n", "<!-- end of generated part -->"
    assert text[text.index(begin) + len(begin) : text.index(end)] == contract_markdown()
