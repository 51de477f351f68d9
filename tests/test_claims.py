"""The scorecard: claims registered once, evaluated from tables only, holding and failing as they should."""

import pandas as pd
import pytest

from memorization import claims, registry


def gini_rows(real, random, half=None):
    rows = []
    for cond, values, noise, frac in (
        ("real", real, "none", 0.0),
        ("rand", random, "uniform", 1.0),
        ("half", half, "uniform", 0.5),
    ):
        for step, g in zip((50, 500, 4000), values or ()):
            rows.append(
                {
                    "experiment": "e",
                    "run_id": cond,
                    "seed": 0,
                    "step": step,
                    "gini": g,
                    "input_noise": noise,
                    "input_noise_fraction": frac,
                    "label_noise": "none",
                    "label_noise_fraction": 0.0,
                }
            )
    return pd.DataFrame(rows)


def test_a_claim_holds_or_fails_on_its_tables():
    claim = registry.CLAIMS["fig03_real_above_random"]
    holds = claims.evaluate(claim, {"gini": gini_rows([0.6, 0.5, 0.4], [0.5, 0.4, 0.3])})
    assert holds["holds"] is True and holds["value"].startswith("3 of 3 checkpoints")
    fails = claims.evaluate(claim, {"gini": gini_rows([0.6, 0.3, 0.4], [0.5, 0.4, 0.3])})
    assert fails["holds"] is False and fails["value"].startswith("2 of 3")
    assert claims.evaluate(claim, None)["value"] == "not run"


def test_a_run_shared_by_two_experiments_is_counted_once():
    frame = gini_rows([0.6, 0.5, 0.4], [0.5, 0.4, 0.3], [0.7, 0.45, 0.35])
    doubled = pd.concat([frame, frame.assign(experiment="other")[frame["run_id"] == "half"]])
    verdict = claims.evaluate(registry.CLAIMS["fig03_half_between"], {"gini": doubled})
    assert verdict["value"] == "2 of 3 checkpoints" and verdict["holds"] is True


def test_a_claim_registered_elsewhere_joins_the_scorecard():
    def loss_falls(tables):
        t = tables["training"].sort_values("epoch")
        return claims.Verdict(
            f"{t['train_loss'].iloc[0]:.1f} -> {t['train_loss'].iloc[-1]:.1f}",
            bool(t["train_loss"].iloc[-1] < t["train_loss"].iloc[0]),
        )

    claim = registry.register_claim(
        registry.Claim(
            "test_loss_falls",
            "fig05_capacity",
            "Training lowers the loss.",
            "training loss first and last",
            "lower at the end",
            loss_falls,
        )
    )
    try:
        falling = pd.DataFrame({"run_id": "a", "seed": 0, "epoch": [0.0, 1.0], "train_loss": [2.0, 1.0]})
        card = claims.scorecard({"fig05_capacity": {"training": falling}})
        row = card.set_index("claim").loc["test_loss_falls"]
        assert row["holds"] == True and row["value"] == "2.0 -> 1.0"  # noqa: E712 (a numpy/pandas bool)
        rising = falling.assign(train_loss=[1.0, 3.0])
        assert claims.evaluate(claim, {"training": rising})["holds"] is False
        assert "| `test_loss_falls` | fig05_capacity | Training lowers the loss." in claims.markdown(card)
        assert card.set_index("claim").loc["fig03_real_above_random", "value"] == "not run"
    finally:
        del registry.CLAIMS["test_loss_falls"]


def test_every_claim_names_a_registered_figure_and_an_implementation():
    for claim in registry.CLAIMS.values():
        assert claim.figure in registry.FIGURES
        assert callable(registry.resolve(claim.evaluate)), claim.name
    with pytest.raises(ValueError, match="not registered"):
        registry.register_claim(registry.Claim("x", "fig99", "", "", "", lambda t: None))


def test_fig10_thresholds_are_the_papers():
    rows = []
    for data, noise in (("real", "none"), ("rand", "random")):
        for reg, s, rand_acc, val in (
            ("none", 0.0, 0.9, 0.98),
            ("dropout", 0.6, 0.55, 0.975),
            ("dropout_adversarial", 0.3, 0.62, 0.97),
        ):
            rows.append(
                {
                    "run_id": f"{data}{reg}",
                    "seed": 0,
                    "step": 1,
                    "epoch": 1.0,
                    "train_acc": rand_acc,
                    "train_loss": 1.0,
                    "val_acc": val,
                    "input_noise": "none",
                    "label_noise": noise,
                    "label_noise_fraction": 1.0 if noise == "random" else 0.0,
                    "regularizer": reg,
                    "reg_strength": s,
                }
            )
    verdict = claims.fig10_dropout_hinders_memorisation({"training": pd.DataFrame(rows)})
    assert not verdict.holds  # dropout cuts 35 points, but dropout + adversarial only 28
    assert "dropout 0.6: cut 0.350" in verdict.value and "dropout_adversarial 0.3: cut 0.280" in verdict.value


def test_the_documented_claims_are_the_registry():
    from .conftest import ROOT

    text = (ROOT / "docs" / "science.md").read_text()
    begin, end = "<!-- generated: python -m memorization.claims --list -->\n", "<!-- end of generated part -->"
    assert text[text.index(begin) + len(begin) : text.index(end)] == claims.claims_markdown()


def test_the_readme_results_are_the_generated_scorecard():
    """The README's results section is a scorecard the workflow wrote (make readme-scorecard), with a row
    for every registered claim, not prose."""
    from .conftest import ROOT

    text = (ROOT / "README.md").read_text()
    begin, end = "<!-- scorecard: generated by `make readme-scorecard` -->\n", "<!-- end of scorecard -->"
    block = text[text.index(begin) + len(begin) : text.index(end)]
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == list(registry.CLAIMS)
    assert "evaluated claims hold" in block
