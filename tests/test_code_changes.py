"""Editing the library reruns the jobs whose code it changes, function by function, and only those; and
`memorization why RUN` names what changed (dry runs on a copy of the repository)."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT, dry_run_jobs, snakemake, write_config

CONFIG = {
    "experiments": {
        "difficulty": {
            "spec": {"train_size": 40, "width": 8, "epochs": 2},
            "grid": {"data": [{}, {"label_noise": "random"}]},
            "seeds": 2,
            "tables": ["csr"],
            "figures": ["fig01_difficulty", "fig09_csr_random"],
        }
    },
    "metrics": {"csr": {"points": 10, "max_iter": 2}},
}
PACKAGE = "workflow/memorization"


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


def edited(repo, module, edit):
    """A context in which one library module of the copy reads `edit(source)`."""

    class Edit:
        def __enter__(self):
            self.path = repo / PACKAGE / module
            self.source = self.path.read_text()
            changed = edit(self.source)
            assert changed != self.source, f"the edit of {module} changed nothing"
            self.path.write_text(changed)

        def __exit__(self, *_):
            self.path.write_text(self.source)

    return Edit()


def rules_after_editing(repo, module, edit):
    """The rules a dry run would execute after `edit(source)` of one library module (restored after)."""
    with edited(repo, module, edit):
        return sorted(rule for rule, _ in dry_run_jobs(repo / "work", None, snakefile=repo / "Snakefile"))


def figures_after_editing(repo, module, edit):
    with edited(repo, module, edit):
        jobs = dry_run_jobs(repo / "work", None, snakefile=repo / "Snakefile")
    return sorted(output.split("/")[-1].split(".")[0] for rule, output in jobs if rule == "figure")


def test_comments_docstrings_annotations_and_formatting_rerun_nothing(repo):
    def cosmetic(source):
        reworded = source.replace('"""The training loop:', '"""The training loop (reworded):', 1)
        spaced = reworded.replace(
            "run_dir = Path(run_dir)\n    run_dir.mkdir(",
            "run_dir = (Path( run_dir ))\n    run_dir.mkdir(",
        )
        annotated = spaced.replace("def next_record(run: Run, step: int) -> int:", "def next_record(run, step):")
        assert reworded != source and spaced != reworded and annotated != spaced
        return "# a comment\n" + annotated

    assert rules_after_editing(repo, "engine/train.py", cosmetic) == []


@pytest.mark.parametrize(
    "module",
    ["engine/sgd.py", "engine/models.py", "measures/metrics.py", "measures/sensitivity.py", "report/stats.py",
     "results/tables.py", "config/spec.py", "pipeline/jobs.py", "papers/arpit2017/fig01_difficulty.py"],
)  # fmt: skip
def test_an_unused_function_appended_to_a_module_reruns_nothing(repo, module):
    assert rules_after_editing(repo, module, lambda s: s + "\n\ndef unused():\n    return 1\n\n\nUNUSED = 2\n") == []


def test_an_edit_inside_the_csr_reruns_the_csr_jobs_and_what_reads_their_tables_not_training(repo):
    rules = rules_after_editing(
        repo, "engine/lass.py", lambda s: s.replace('"n_points": len(x),', '"n_points": int(len(x)),')
    )
    assert rules == ["all", "experiment_table", "figure", "findings", "metric", "metric", "scorecard"]
    with edited(repo, "engine/lass.py", lambda s: s.replace('"n_points": len(x),', '"n_points": int(len(x)),')):
        jobs = dry_run_jobs(repo / "work", None, snakefile=repo / "Snakefile")
    assert all(
        re.search(r"csr(\.[0-9a-f]{12})?\.parquet$", out)
        for rule, out in jobs
        if rule in ("metric", "experiment_table")
    )
    assert [out for rule, out in jobs if rule == "figure"] == [
        "results/config/figures/fig09_csr_random.png, results/config/figures/fig09_csr_random.pdf, "
        "results/config/figures/fig09_csr_random.findings.txt"
    ]


def test_an_edit_of_one_figures_statistic_reruns_that_figure_its_findings_and_the_scorecard(repo):
    def statistic(source):  # stats.first_epoch_difficulty: Fig. 1's alone
        return source.replace(
            'out["misclassification"] = 1.0 - out["p_correct"]', 'out["misclassification"] = 1 - out["p_correct"]'
        )

    assert rules_after_editing(repo, "report/stats.py", statistic) == ["all", "figure", "findings", "scorecard"]
    assert figures_after_editing(repo, "report/stats.py", statistic) == ["fig01_difficulty"]


def test_editing_what_every_figure_draws_with_reruns_the_figures_not_the_scorecard(repo):
    rules = rules_after_editing(repo, "report/plotting.py", lambda s: s.replace('"font.size": 9,', '"font.size": 10,'))
    assert rules == ["all", "figure", "figure", "findings"]  # the scorecard reads the statistic, not the drawing


def test_editing_a_figure_room_reruns_its_figure_and_the_scorecard_as_each_reads_it(repo):
    room = "papers/arpit2017/fig01_difficulty.py"
    drawing = rules_after_editing(repo, room, lambda s: s.replace('lw=2, label=f"{cond}', 'lw=2.5, label=f"{cond}'))
    assert drawing == ["all", "figure", "findings"]
    claim = rules_after_editing(repo, room, lambda s: s.replace("0.5 <= r <= 2.0", "0.5 <= r <= 2.5"))
    assert claim == ["all", "findings", "scorecard"]  # the findings page shows each claim with its figure
    statistic = rules_after_editing(repo, room, lambda s: s.replace("else 99, c", "else 98, c"))
    assert statistic == ["all", "figure", "findings", "scorecard"]
    assert rules_after_editing(repo, "papers/arpit2017/fig03_gini.py", lambda s: s + "\nX = 1\n") == []


def test_an_edit_inside_the_sgd_step_reruns_training_and_everything_after_it(repo):
    def step(source):
        return source.replace("correct = logits.argmax(-1) == y", "correct = y == logits.argmax(-1)")

    rules = rules_after_editing(repo, "engine/sgd.py", step)
    assert rules == ["all", "experiment_table", "experiment_table", "figure", "figure", "findings", "metric",
                     "metric", "metric", "metric", "scorecard", "train", "train"]  # fmt: skip


def test_editing_the_noise_constructions_rebuilds_the_data_sets_and_everything_after(repo):
    rules = set(rules_after_editing(repo, "engine/data.py", lambda s: s.replace("x = x.copy()", "x = np.copy(x)")))
    assert {"noisy_dataset", "train", "metric", "figure"} <= rules


def test_why_names_the_function_whose_edit_reruns_a_run(repo):
    work = repo / "work"
    run = sorted(p.name for p in (work / "results" / "runs").iterdir())[0]
    env = {**os.environ, "PYTHONPATH": str(repo / "workflow")}  # the copy's package, edited

    def why():
        command = [sys.executable, "-m", "memorization", "why", run, "config.yaml"]
        return subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=True).stdout

    assert why() == "training: up to date (its code is unchanged)\ncsr: up to date (its code is unchanged)\n" + (
        "examples: up to date (its code is unchanged)\n"
    )
    with edited(repo, "engine/lass.py", lambda s: s.replace('"n_points": len(x),', '"n_points": int(len(x)),')):
        said = why()
    assert "training: up to date" in said and "csr: reruns: engine.lass:csr changed" in said
    with edited(
        repo,
        "engine/sgd.py",
        lambda s: s.replace("correct = logits.argmax(-1) == y", "correct = y == logits.argmax(-1)"),
    ):
        said = why()
    assert said.startswith("training: reruns: engine.sgd:seed_group_step changed\n")
