"""The scorecard: claims registered once in their figure's room, evaluated on the figure's statistic from
tables only, holding and failing as they should."""

import pandas as pd
import pytest

from memorization import claims, registry
from memorization.papers.arpit2017 import fig10_regularizers


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


def evaluate(claim: str, tables) -> dict:
    rows = claims.evaluate_figure(registry.CLAIMS[claim].figure, tables)
    return next(r for r in rows if r["claim"] == claim)


def test_a_claim_holds_or_fails_on_its_tables():
    holds = evaluate("fig03_real_above_random", {"gini": gini_rows([0.6, 0.5, 0.4], [0.5, 0.4, 0.3])})
    assert holds["holds"] is True and holds["value"].startswith("3 of 3 checkpoints")
    fails = evaluate("fig03_real_above_random", {"gini": gini_rows([0.6, 0.3, 0.4], [0.5, 0.4, 0.3])})
    assert fails["holds"] is False and fails["value"].startswith("2 of 3")
    assert evaluate("fig03_real_above_random", None)["value"] == "not run"
    # a claim whose conditions the tables lack is not computable, not false; its figure's other claims still are
    lacking = evaluate("fig03_half_between", {"gini": gini_rows([0.6, 0.5, 0.4], [0.5, 0.4, 0.3])})
    assert lacking["holds"] is None and lacking["value"].startswith("not computable from these tables (KeyError")


def test_a_run_shared_by_two_experiments_is_counted_once():
    frame = gini_rows([0.6, 0.5, 0.4], [0.5, 0.4, 0.3], [0.7, 0.45, 0.35])
    doubled = pd.concat([frame, frame.assign(experiment="other")[frame["run_id"] == "half"]])
    verdict = evaluate("fig03_half_between", {"gini": doubled})
    assert verdict["value"] == "2 of 3 checkpoints" and verdict["holds"] is True


def test_a_claim_registered_elsewhere_joins_the_scorecard():
    def widest_is_best(capacity):  # on Fig. 5's statistic
        curve = capacity.curve("no noise")
        return claims.Verdict(f"{curve.idxmax()} of {curve.index.max()}", bool(curve.idxmax() == curve.index.max()))

    claim = registry.register_claim(
        registry.Claim(
            "test_widest_is_best",
            "fig05_capacity",
            "The widest network validates best.",
            "the width of the best validation accuracy, of the widest",
            "the widest",
            widest_is_best,
        )
    )
    try:
        rows = [
            {
                "run_id": f"w{w}",
                "seed": 0,
                "step": 1,
                "epoch": 1.0,
                "width": w,
                "train_size": 10,
                "val_acc": acc,
                "train_acc": 1.0,
            }
            | {"train_loss": 0.1, "input_noise": "none", "input_noise_fraction": 0.0, "label_noise": "none"}
            | {"label_noise_fraction": 0.0}
            for w, acc in ((8, 0.9), (16, 0.95))
        ]
        card = claims.scorecard({"fig05_capacity": {"training": pd.DataFrame(rows)}})
        row = card.set_index("claim").loc["test_widest_is_best"]
        assert row["holds"] == True and row["value"] == "16 of 16"  # noqa: E712 (a numpy/pandas bool)
        assert card.set_index("claim").loc["fig05_noise_needs_capacity", "value"] == "noise 0: 16"  # the same curve
        narrower = pd.DataFrame(rows).assign(val_acc=[0.95, 0.9])
        assert evaluate("test_widest_is_best", {"training": narrower})["holds"] is False
        assert "| `test_widest_is_best` | fig05_capacity | The widest network validates best." in claims.markdown(card)
        assert card.set_index("claim").loc["fig03_real_above_random", "value"] == "not run"
        assert claim.name in list(card["claim"])
    finally:
        del registry.CLAIMS["test_widest_is_best"]


def test_every_claim_names_a_registered_figure_and_an_implementation():
    for claim in registry.CLAIMS.values():
        assert claim.figure in registry.FIGURES
        assert callable(claim.evaluate), claim.name
    with pytest.raises(ValueError, match="not registered"):
        registry.register_claim(registry.Claim("x", "fig99", "", "", "", lambda t: None))


def test_figures_and_claims_are_registered_by_their_rooms():
    """Each paper figure and its claims come from one file, the room: no implementation found by name."""
    import inspect

    for name, fig in registry.FIGURES.items():
        if not name.startswith("fig"):
            continue
        files = {inspect.getsourcefile(f) for f in (fig.compute, fig.draw, fig.findings)}
        files |= {inspect.getsourcefile(c.evaluate) for c in registry.claims_of(name)}
        assert len(files) == 1 and "/papers/arpit2017/fig" in files.pop(), name


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
                    "input_noise_fraction": 0.0,
                    "label_noise": noise,
                    "label_noise_fraction": 1.0 if noise == "random" else 0.0,
                    "regularizer": reg,
                    "reg_strength": s,
                }
            )
    points = fig10_regularizers.regulariser_points(pd.DataFrame(rows))
    verdict = fig10_regularizers.dropout_hinders_memorisation(points)
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
