"""The metric stage through Snakemake: tables of the contract, and metric settings that rerun only their jobs."""

import copy
import re

import pandas as pd
import pytest

from memorization.catalog import table as registered
from memorization.results.tables import read_provenance

from .conftest import completed_workdir, dry_run_jobs, write_config

METRICS = {
    "metrics": {
        "sensitivity": {"window": 10, "stride": 2},
        "class_sensitivity": {"window": 10, "stride": 5, "at": "last"},
        "csr": {"r": 8, "alpha": 2, "beta": 0.4, "max_iter": 10, "points": 50},
    },
    "experiments": {
        "sens": {
            "spec": {
                "dataset": "digits",
                "train_size": 60,
                "width": 8,
                "lr": 0.05,
                "sampling": "replacement",
                "steps": 30,
                "loss": "smoothed_log",
                "checkpoints": {"unit": "step", "at": [10, 30]},
            },
            "grid": {"data": [{}, {"input_noise": "uniform"}]},
            "seeds": 2,
            "tables": ["sensitivity", "gini", "class_sensitivity", "csr"],
            "figures": ["fig03_gini", "fig04_class_sensitivity", "fig09_csr_random"],
        },
    },
}


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    return completed_workdir(tmp_path_factory, "metrics", METRICS)


def table(done, name):
    return pd.read_parquet(done / f"results/config/tables/sens/{name}.parquet")


def test_metric_tables_follow_the_contract(done):
    for name, rows in (
        ("sensitivity", 2 * 2 * 2 * 60),
        ("gini", 2 * 2 * 2),
        ("class_sensitivity", 2 * 2 * 100),
        ("csr", 2 * 2 * 2 * 2),
    ):
        frame = table(done, name)
        assert list(frame.columns) == list(registered(name).dtypes()), name
        assert len(frame) == rows, name
        assert frame["train_size"].eq(60).all() and frame["run_id"].nunique() == 2
        assert "memorization.run_specs" in read_provenance(done / f"results/config/tables/sens/{name}.parquet")
    sens = table(done, "sensitivity")
    assert (sens["sensitivity"] >= 0).all() and (sens["sensitivity"] > 0).mean() > 0.9
    assert sorted(sens["step"].unique()) == [10, 30] and set(sens["window"]) == {10}
    gini = table(done, "gini")
    assert gini["gini"].between(0, 1).all()
    # the gini table is the Gini of the sensitivity table, per (run, seed, step)
    from memorization.measures.gini import gini as gini_of

    one = sens[(sens["seed"] == 1) & (sens["step"] == 30) & (sens["input_noise"] == "none")]
    expected = gini_of(one["sensitivity"].to_numpy())
    got = gini[(gini["seed"] == 1) & (gini["step"] == 30) & (gini["input_noise"] == "none")]["gini"].item()
    assert got == pytest.approx(expected)
    cs = table(done, "class_sensitivity")
    assert set(cs["step"]) == {30} and (cs["value"] >= 0).all()
    off = cs[cs["class_i"] != cs["class_j"]]
    assert (off["value"] > 0).mean() > 0.5  # through the SGD updates, classes influence each other
    csr = table(done, "csr")
    assert set(csr["split"]) == {"val", "train"} and csr["csr"].between(0, 1).all()
    assert (
        csr["n_points"].eq(50).all() and csr["lass_r"].eq(8).all() and (csr["max_distance"] <= 8 * (1 + 1e-5)).all()
    )  # float32 ulps


def test_figures_of_the_metrics_are_drawn(done):
    for fig in ("fig03_gini", "fig04_class_sensitivity", "fig09_csr_random"):
        for ext in ("png", "pdf"):
            assert (done / f"results/config/figures/{fig}.{ext}").stat().st_size > 10_000


def test_a_lass_setting_reruns_only_the_csr_jobs(done, tmp_path):
    changed = copy.deepcopy(METRICS)
    changed["metrics"]["csr"]["r"] = 4
    jobs = dry_run_jobs(done, write_config(tmp_path, changed))
    assert sorted(rule for rule, _ in jobs) == [
        "all",
        "config_record",
        "experiment_table",
        "figure",
        "findings",
        "metric",
        "metric",
        "scorecard",
    ]
    outputs = [o for _, o in jobs if o]
    assert sum(bool(re.fullmatch(r"results/metrics/\w+/csr\.[0-9a-f]{12}\.parquet", o)) for o in outputs) == 2
    assert "results/config/tables/sens/csr.parquet" in outputs
    assert not any("sensitivity" in o or "results/runs/" in o or "gini" in o for o in outputs)


def test_two_configs_with_other_metric_settings_keep_both_tables_and_switching_back_plans_nothing(
    done, tmp_path_factory
):
    """A metric table's file is named by its settings: a second config that shares the runs but sets another
    LASS radius computes its own csr tables beside the first's, and the first config then plans nothing."""
    from .conftest import copy_of, snakemake

    workdir = copy_of(done, tmp_path_factory, "metric-settings")
    changed = copy.deepcopy(METRICS)
    changed["metrics"]["csr"]["r"] = 4
    snakemake(workdir, config=write_config(workdir, changed, "wider.yaml"))
    for run in workdir.glob("results/metrics/*"):
        if list(run.glob("csr.*.parquet")):
            assert len(list(run.glob("csr.*.parquet"))) == 2  # r = 8 and r = 4, each kept
    assert dry_run_jobs(workdir, workdir / "config.yaml") == []
    r = {pd.read_parquet(p)["lass_r"].iloc[0] for p in workdir.glob("results/*/tables/sens/csr.parquet")}
    assert r == {4.0, 8.0}


def test_figures_regenerate_from_a_copy_of_the_tables_alone(done, tmp_path):
    import shutil
    import subprocess
    import sys

    shared = tmp_path / "colleague" / "tables"
    shutil.copytree(done / "results/config/tables", shared)  # no runs, no checkpoints, no Snakemake state
    out = subprocess.run(
        [sys.executable, "-m", "memorization", "figures", str(shared), str(tmp_path / "figs")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for fig in ("fig03_gini", "fig04_class_sensitivity", "fig09_csr_random"):
        assert str(tmp_path / "figs" / f"{fig}.png") in out
        assert (tmp_path / "figs" / f"{fig}.png").read_bytes() == (
            done / f"results/config/figures/{fig}.png"
        ).read_bytes()
    empty = subprocess.run(
        [sys.executable, "-m", "memorization", "figures", str(tmp_path / "nothing")], capture_output=True, text=True
    )
    assert empty.returncode != 0 and "no figure could be drawn" in empty.stderr


def test_shared_tables_need_no_training_stack(done, tmp_path):
    """A colleague's venv with `pip install memorization[figures]` (no torch, Snakemake or jsonschema) reads
    the tables, their provenance and redraws the figures."""
    import shutil
    import subprocess
    import sys

    from .conftest import ROOT

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    source = tmp_path / "source"  # a copy: building a wheel writes build/ into the source tree
    shutil.copytree(
        ROOT / "workflow" / "memorization",
        source / "workflow" / "memorization",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "pyproject.toml", source)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"{source}[figures]"], check=True, capture_output=True
    )
    shared = tmp_path / "tables"
    shutil.copytree(done / "results/config/tables", shared)
    script = (
        "import json, sys, importlib.util\n"
        "from memorization import papers\n"
        "from memorization.report.figures import figures_from_tables\n"
        "import pandas as pd\n"
        "from memorization.results.tables import read_provenance\n"
        f"written = figures_from_tables({str(shared)!r}, {str(tmp_path / 'figs')!r})\n"
        f"specs = json.loads(read_provenance({str(shared / 'sens' / 'csr.parquet')!r})['memorization.run_specs'])\n"
        f"rows = len(pd.read_parquet({str(shared / 'sens' / 'csr.parquet')!r}))\n"
        "absent = [m for m in ('torch', 'snakemake', 'jsonschema', 'yaml', 'sklearn') if importlib.util.find_spec(m)]\n"
        "loaded = [m for m in ('torch', 'snakemake', 'jsonschema', 'yaml') if m in sys.modules]\n"
        "print(len(written), len(specs), rows, absent, loaded)\n"
    )
    out = subprocess.run([str(python), "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].split() == [
        "6",
        "2",
        "16",
        "[]",
        "[]",
    ]  # 3 figures x (png, pdf); 2 runs; 16 rows
    for fig in ("fig03_gini", "fig04_class_sensitivity", "fig09_csr_random"):
        assert (tmp_path / "figs" / f"{fig}.png").stat().st_size > 10_000


def test_figs_3_4_9_findings_and_claims_read_the_same_numbers(done):
    """Per figure, a number recomputed here from its table appears in its findings and in its claim's value."""
    from memorization.report.stats import diagonal_dominance

    findings = {
        f: (done / f"results/config/figures/{f}.findings.txt").read_text()
        for f in METRICS["experiments"]["sens"]["figures"]
    }
    value = pd.read_parquet(done / "results/config/scorecard.parquet").set_index("claim")["value"]
    real = lambda f: f[f["input_noise"] == "none"]
    rand = lambda f: f[f["input_noise"] != "none"]
    gini = table(done, "gini")
    above = real(gini).groupby("step")["gini"].mean() > rand(gini).groupby("step")["gini"].mean()
    assert f"Gini real > random inputs at {int(above.sum())} of 2 checkpoints" in findings["fig03_gini"]
    assert value["fig03_real_above_random"] == f"{int(above.sum())} of 2 checkpoints (T = 10, 30)"
    cs = real(table(done, "class_sensitivity"))
    d = diagonal_dominance(cs.groupby(["class_i", "class_j"])["value"].mean().unstack().to_numpy())
    assert "D at step 30: random inputs" in findings["fig04_class_sensitivity"]
    assert f"real data {d:.2f}" in findings["fig04_class_sensitivity"] and value["fig04_real_less_diagonal"].startswith(
        f"D real {d:.2f}, "
    )
    csr = table(done, "csr")
    train = real(csr[csr["split"] == "train"]).groupby("epoch")["csr"].mean()
    assert findings["fig09_csr_random"].splitlines()[1] == "training-split CSR, real data: " + " ".join(
        f"{v:.2f}" for v in train
    )
    assert value["footnote5_training_csr"].startswith(f"{train.iloc[0]:.2f} at initialisation, peak {train.max():.2f}")
