"""Figs 2, 5-8, 10, 11 through Snakemake on a tiny config: the convergence and filters tables, regulariser
columns, every figure drawn, and every figure redrawn from a copy of the tables alone."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from memorization.catalog import table as registered
from memorization.results.tables import read_provenance

from .conftest import completed_workdir

FRACTIONS = [
    {},
    {"input_noise": "gaussian", "input_noise_fraction": 0.5},
    {"label_noise": "random", "label_noise_fraction": 0.5},
]
CNN = {"arch": "cnn", "cnn_channels": 2, "cnn_dense": [8], "momentum": 0.9, "epochs": 2}
MLP = {"train_size": 60, "width": 16, "lr": 0.1, "momentum": 0.9}
REGS = [
    {},
    {"regularizer": "dropout", "reg_strength": 0.5},
    {"regularizer": "input_dropout", "reg_strength": 0.3},
    {"regularizer": "input_noise", "reg_strength": 0.3},
    {"regularizer": "hidden_noise", "reg_strength": 0.1},
    {"regularizer": "weight_decay", "reg_strength": 0.01},
    {"regularizer": "dropout_adversarial", "reg_strength": 0.3, "adversarial_r": 40, "adversarial_max_iter": 3},
]
CONFIG = {
    "defaults": {"dataset": "digits"},
    "metrics": {"csr": {"r": 8, "alpha": 6.67, "beta": 5.33, "max_iter": 5, "points": 20, "splits": ["val"]}},
    "experiments": {
        "filters": {
            "spec": {**CNN, "train_size": 100},
            "grid": {"data": [{}, {"label_noise": "random"}]},
            "tables": ["training"],
            "figures": ["fig02_filters"],
        },
        "capacity": {
            "spec": {**MLP, "train_size": 40, "epochs": 40, "stop_when_fit": True},
            "grid": {"width": [4, 32], "noise": FRACTIONS[:2]},
            "seeds": 2,
            "tables": ["training"],
            "figures": ["fig05_capacity", "fig06_convergence"],
        },
        "dataset_size": {
            "spec": {**MLP, "width": 32, "epochs": 40, "stop_when_fit": True},
            "grid": {"train_size": [20, 40], "noise": FRACTIONS[:2]},
            "seeds": 2,
            "figures": ["fig06_convergence"],
        },
        "mlp_noise": {"spec": {**MLP, "epochs": 3}, "grid": {"noise": FRACTIONS}, "figures": ["fig07_mlp_noise"]},
        "cnn_noise": {"spec": {**CNN, "train_size": 60}, "grid": {"noise": FRACTIONS}, "figures": ["fig08_cnn_noise"]},
        "regularizers": {
            "spec": {**MLP, "epochs": 2},
            "grid": {"data": [{}, {"label_noise": "random"}], "regularization": REGS},
            "seeds": 2,
            "figures": ["fig10_regularizers", "fig11_regularizer_curves"],
        },
    },
}
FIGURES = [
    "fig02_filters",
    "fig05_capacity",
    "fig06_convergence",
    "fig07_mlp_noise",
    "fig08_cnn_noise",
    "fig10_regularizers",
    "fig11_regularizer_curves",
]


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    return completed_workdir(tmp_path_factory, "paper_figures", CONFIG)


def table(done, experiment, name):
    path = done / f"results/config/tables/{experiment}/{name}.parquet"
    frame = pd.read_parquet(path)
    settings = json.loads(read_provenance(path)["memorization.settings"])  # the experiment's setting columns
    assert list(frame.columns) == [*registered(name).dtypes(), *settings], (experiment, name)
    return frame


def test_every_figure_is_drawn(done):
    for fig in FIGURES:
        for ext in ("png", "pdf"):
            assert (done / f"results/config/figures/{fig}.{ext}").stat().st_size > 10_000, fig


def test_convergence_table_records_the_fit_and_the_cap(done):
    conv = table(done, "capacity", "convergence")
    assert len(conv) == 2 * 2 * 2  # runs x seeds
    assert (conv["max_epochs"] == 40).all()
    fitted = conv.dropna(subset=["epochs_to_fit"])
    assert len(fitted) and (fitted["epochs_to_fit"] <= 40).all()
    training = table(done, "capacity", "training")
    for (run, seed), g in training.groupby(["run_id", "seed"]):
        row = conv[(conv["run_id"] == run) & (conv["seed"] == seed)].iloc[0]
        at_fit = g[g["train_acc"] == 1.0]["epoch"]
        if pd.isna(row["epochs_to_fit"]):
            assert len(at_fit) == 0
        else:
            assert at_fit.min() == row["epochs_to_fit"]
    # a run stops at the first evaluation at which every seed fits (a seed may fit, then lose a point); a run
    # in which that never happens trains to the cap
    for run, g in training.groupby("run_id"):
        all_fit = g.groupby("epoch")["train_acc"].min() == 1.0
        expected = all_fit.idxmax() if all_fit.any() else 40
        assert g["epoch"].max() == expected
        assert expected >= conv[conv["run_id"] == run]["epochs_to_fit"].max() if all_fit.any() else True
    assert training.groupby("run_id")["epoch"].max().lt(40).any()  # some run stopped early


def test_regularizer_columns_name_each_run(done):
    training = table(done, "regularizers", "training")
    settings = training.groupby(["regularizer", "reg_strength"])["run_id"].nunique()
    assert settings.to_dict() == {
        ("dropout", 0.5): 2,
        ("dropout_adversarial", 0.3): 2,
        ("hidden_noise", 0.1): 2,
        ("input_dropout", 0.3): 2,
        ("input_noise", 0.3): 2,
        ("none", 0.0): 2,
        ("weight_decay", 0.01): 2,
    }
    final = training[training["epoch"] == 2].groupby(["regularizer", "label_noise"])["train_loss"].mean()
    assert final.nunique() == len(final)  # every regulariser changed training


def test_filters_table_holds_the_first_layer_at_the_start_and_the_end(done):
    filters = table(done, "filters", "filters")
    assert sorted(filters["step"].unique())[0] == 0 and filters["step"].nunique() == 2
    one = filters[(filters["seed"] == 0) & (filters["step"] == 0)]
    assert len(one) == 2 * 2 * 1 * 5 * 5  # runs x filters x channels x 5 x 5
    start = one.sort_values(["run_id", "filter", "channel", "row", "col"])["value"].to_numpy()
    end = (
        filters[(filters["seed"] == 0) & (filters["step"] > 0)]
        .sort_values(["run_id", "filter", "channel", "row", "col"])["value"]
        .to_numpy()
    )
    assert np.abs(end - start).max() > 1e-4  # training moved them


def test_all_figures_regenerate_from_a_copy_of_the_tables_alone(done, tmp_path):
    shared = tmp_path / "colleague" / "tables"
    shutil.copytree(done / "results/config/tables", shared)
    out = subprocess.run(
        [sys.executable, "-m", "memorization", "figures", str(shared), str(tmp_path / "figs")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for fig in FIGURES:
        assert (tmp_path / "figs" / f"{fig}.png").read_bytes() == (
            done / f"results/config/figures/{fig}.png"
        ).read_bytes()
        assert (tmp_path / "figs" / f"{fig}.pdf").exists()
    assert "fig10_regularizers: dropout: " in out  # what the run shows is printed too


def test_each_table_has_one_schema_across_experiments(done):
    """Every file of a table has the table's declared Parquet schema, so all experiments' files of a table
    read as one pyarrow dataset (also what polars or DuckDB globbing needs)."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from memorization.catalog import TABLES
    from memorization.results.tables import arrow_schema

    checked = 0
    for name in TABLES:
        files = sorted(done.glob(f"results/config/tables/*/{name}.parquet"))
        if len(files) < 2:
            continue
        declared = arrow_schema(name)  # then each experiment's own setting columns
        assert {pa.schema(list(pq.read_schema(f))[: len(declared)]) for f in files} == {declared}, name
        schema = pa.unify_schemas([pq.read_schema(f) for f in files])
        rows = ds.dataset(files, schema=schema, format="parquet").to_table()
        assert rows.num_rows == sum(pq.read_metadata(f).num_rows for f in files)
        assert set(rows.column("experiment").to_pylist()) == {f.parent.name for f in files}
        checked += 1
    assert checked >= 3  # training, csr, convergence at least


def test_each_figure_and_its_claims_read_the_same_numbers(done):
    """A figure's findings and its claims' values are printed from one statistic: per figure, a number
    recomputed here from the figure's tables (independently of its room) appears in both."""
    from memorization.report.stats import distinct, is_random_labels, is_real, per_run_summary, regulariser_setting
    from memorization.results.tables import tables_by_figure

    tables = {
        fig: {t: distinct(f) for t, f in frames.items()}
        for fig, frames in tables_by_figure(done / "results/config/tables").items()
    }
    findings = {f: (done / f"results/config/figures/{f}.findings.txt").read_text() for f in FIGURES}
    value = pd.read_parquet(done / "results/config/scorecard.parquet").set_index("claim")["value"]

    # Fig. 10: dropout's cut of random-label training accuracy (its only strength, 0.5)
    s = per_run_summary(tables["fig10_regularizers"]["training"])
    rand = s[is_random_labels(s)].groupby("regularizer")["final_train_acc"].mean()
    change = rand["dropout"] - rand["none"]
    assert f"dropout: 0.5: {change:+.3f} / " in findings["fig10_regularizers"]
    assert f"dropout 0.5: cut {-change:.3f}" in value["fig10_dropout_hinders_memorisation"]
    # Fig. 11: the order by the loop's loss at the last epoch, on random labels
    t = tables["fig11_regularizer_curves"]["training"]
    t = t[is_random_labels(t) & (t["epoch"] == t["epoch"].max())].assign(setting=lambda f: regulariser_setting(f))
    order = list(t.groupby("setting")["batch_loss"].mean().sort_values().index)
    assert (
        f"random labels, lowest to highest final training loss (the loop's): {', '.join(order)}"
        in findings["fig11_regularizer_curves"]
    )
    assert value["fig11_order_differs"].startswith(f"random labels: {' < '.join(order)};")
    # Fig. 6: epochs to fit, widest over narrowest, clean data
    c = tables["fig06_convergence"]["convergence"]
    c = c[(c["train_size"] == 40) & (c["input_noise"] == "none")]
    means = c.assign(e=c["epochs_to_fit"].astype("float64").fillna(c["max_epochs"])).groupby("width")["e"].mean()
    ratio = means.iloc[-1] / means.iloc[0]
    assert f"no noise: {means.iloc[0]:.1f} -> {means.iloc[-1]:.1f} epochs from width" in findings["fig06_convergence"]
    assert value["fig06_width_helps_noise_more"].startswith(f"noise 0: x{ratio:.2f}")
    # Fig. 5: the clean curve's best width and the width within half a point of it
    s = per_run_summary(tables["fig05_capacity"]["training"])
    curve = s[is_real(s) & (s["train_size"] == s["train_size"].max())].groupby("width")["best_val_acc"].mean()
    assert f"no noise: best width {curve.idxmax()} ({curve.max():.3f})" in findings["fig05_capacity"]
    needed = int(curve[curve >= curve.max() - 0.005].index.min())
    assert value["fig05_noise_needs_capacity"].startswith(f"noise 0: {needed},")
    # Figs 7 and 8: best validation accuracy per label-noise fraction, each seed's best averaged
    for fig, claim in (("fig07_mlp_noise", "fig07_noise_ordering"), ("fig08_cnn_noise", "fig08_noise_ordering")):
        s = per_run_summary(tables[fig]["training"])
        best = s[s["input_noise"] == "none"].groupby("label_noise_fraction")["best_val_acc"].mean()
        assert f"best val acc {' '.join(f'{v:.3f}' for v in best)}" in findings[fig].splitlines()[1]
        assert f"best val acc {' '.join(f'{v:.3g}' for v in best)}" in value[claim].split("; ")[1]
    # Fig. 2: random labels, per seed: the structure of what training changed (findings: its mean)
    from memorization.report.stats import filter_arrays, neighbour_correlation, with_condition

    f = with_condition(tables["fig02_filters"]["filters"])
    f = f[f["condition"] == "random labels"]
    arrays = filter_arrays(f)
    learned = [
        neighbour_correlation(arrays[(r, sd, f["step"].max())] - arrays[(r, sd, 0)])
        for r, sd in sorted(set(zip(f["run_id"], f["seed"])))
    ]
    initial = [neighbour_correlation(arrays[(r, sd, 0)]) for r, sd in sorted(set(zip(f["run_id"], f["seed"])))]
    assert (
        f"random labels: neighbour-pixel correlation of W_T - W_0 {sum(learned) / len(learned):.2f}"
        in findings["fig02_filters"]
    )
    assert value["fig02_random_label_filters"] == "per seed " + " ".join(
        f"{a - b:.3g}" for a, b in zip(learned, initial)
    )
