"""Editing the library reruns what it changes, and only that (dry runs on a copy of the repository)."""

import shutil

import pytest

from .conftest import ROOT, dry_run_jobs, snakemake, write_config

CONFIG = {
    "experiments": {
        "difficulty": {
            "spec": {"train_size": 40, "width": 8, "epochs": 1},
            "grid": {"data": [{}, {"label_noise": "random"}]},
            "seeds": 2,
            "figures": ["fig01_difficulty"],
        }
    }
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A copy of the repository with the tiny config run to completion in its `work/` directory."""
    repo = tmp_path_factory.mktemp("repo")
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(ROOT / name, repo)
    for name in ("rules", "workflow", "envs"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "work").mkdir()
    write_config(repo / "work", CONFIG)
    snakemake(repo / "work", snakefile=repo / "Snakefile")
    return repo


def rules_after_editing(repo, module, edit):
    """The rules a dry run would execute after `edit(source)` of one library module (restored after)."""
    path = repo / "workflow" / "memorization" / module
    source = path.read_text()
    try:
        path.write_text(edit(source))
        return sorted(rule for rule, _ in dry_run_jobs(repo / "work", None, snakefile=repo / "Snakefile"))
    finally:
        path.write_text(source)


def test_comments_docstrings_and_formatting_rerun_nothing(repo):
    def cosmetic(source):
        reworded = source.replace('"""The training loop:', '"""The training loop (reworded):', 1)
        assert reworded != source
        spaced = reworded.replace(
            "run_dir, device = Path(run_dir), torch.device(device)",
            "run_dir, device = (Path( run_dir ),  torch.device(device))",
        )
        assert spaced != reworded
        return "# a comment\n" + spaced

    assert rules_after_editing(repo, "train.py", cosmetic) == []


def test_editing_a_figure_reruns_only_the_figures(repo):
    rules = rules_after_editing(repo, "figures.py", lambda s: s + "\nSOMETHING_NEW = 1\n")
    assert rules == ["all", "figure", "findings"]  # the scorecard reads the statistic, not the drawing


def test_editing_a_figure_room_reruns_its_figure_and_the_scorecard_as_each_reads_it(repo):
    room = "papers/arpit2017/fig01_difficulty.py"
    drawing = rules_after_editing(repo, room, lambda s: s.replace('lw=2, label=f"{cond}', 'lw=2.5, label=f"{cond}'))
    assert drawing == ["all", "figure", "findings"]
    claim = rules_after_editing(repo, room, lambda s: s.replace("0.5 <= r <= 2.0", "0.5 <= r <= 2.5"))
    assert claim == ["all", "scorecard"]
    statistic = rules_after_editing(repo, room, lambda s: s.replace("else 99, c", "else 98, c"))
    assert statistic == ["all", "figure", "findings", "scorecard"]
    assert rules_after_editing(repo, "papers/arpit2017/fig03_gini.py", lambda s: s + "\nX = 1\n") == []


def test_editing_the_training_code_reruns_training_and_what_follows(repo):
    rules = rules_after_editing(repo, "train.py", lambda s: s + "\nSOMETHING_NEW = 1\n")
    assert rules == [
        "all",
        "experiment_table",
        "experiment_table",
        "figure",
        "findings",
        "metric",
        "metric",
        "scorecard",
        "train",
        "train",
    ]


def test_editing_the_noise_constructions_rebuilds_the_data_sets_and_everything_after(repo):
    rules = set(rules_after_editing(repo, "data.py", lambda s: s + "\nSOMETHING_NEW = 1\n"))
    assert {"dataset", "noisy_dataset", "train", "metric", "figure"} <= rules
