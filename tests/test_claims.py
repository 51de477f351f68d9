"""The scorecard: claims registered once in their figure's room, evaluated on the figure's statistic from
tables only, holding and failing as they should."""

import re

import numpy as np
import pandas as pd
import pytest

from memorization import catalog as registry
from memorization.papers.arpit2017 import fig10_regularizers
from memorization.report import scorecard as claims


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
    assert lacking["holds"] is None  # the missing condition is named, not a Python exception
    assert lacking["value"].startswith("not computable: these tables have no '50% random inputs', which the claim")
    assert "KeyError" not in lacking["value"]


def test_the_scorecard_names_the_data_set_each_claim_was_tested_on():
    frame = gini_rows([0.6, 0.5, 0.4], [0.5, 0.4, 0.3]).assign(dataset="mnist5k14")
    assert evaluate("fig03_real_above_random", {"gini": frame})["dataset"] == "mnist5k14"
    mixed = pd.concat([frame, frame.assign(dataset="digits", experiment="f")])
    assert evaluate("fig03_real_above_random", {"gini": mixed})["dataset"] == "digits, mnist5k14"
    assert evaluate("fig03_real_above_random", None)["dataset"] is None
    card = claims.scorecard({"fig03_gini": {"gini": frame}})
    assert card.set_index("claim").loc["fig03_real_above_random", "dataset"] == "mnist5k14"
    assert pd.isna(card.set_index("claim").loc["fig01_real_uneven", "dataset"])
    md = claims.markdown(card)
    assert "| claim | figure | data set |" in md and "| `fig03_real_above_random` | fig03_gini | mnist5k14 |" in md
    # a claim's note (why it reads as it does) is printed under the table
    assert "Notes:\n- `fig09_rise_then_plateau`: On the 8x8 digits the CNN classifies" in md
    assert "<td>mnist5k14</td>" in claims.html(card)


def test_a_run_shared_by_two_experiments_is_counted_once():
    frame = gini_rows([0.6, 0.5, 0.4], [0.5, 0.4, 0.3], [0.7, 0.45, 0.35])
    doubled = pd.concat([frame, frame.assign(experiment="other")[frame["run_id"] == "half"]])
    verdict = evaluate("fig03_half_between", {"gini": doubled})
    assert verdict["value"] == "2 of 3 checkpoints" and verdict["holds"] is True


def test_a_claim_registered_elsewhere_joins_the_scorecard():
    def widest_is_best(capacity):  # on Fig. 5's statistic
        curve = capacity.curve("no noise")
        return registry.Verdict(f"{curve.idxmax()} of {curve.index.max()}", bool(curve.idxmax() == curve.index.max()))

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
        assert "| `test_widest_is_best` | fig05_capacity | — | The widest network validates best." in claims.markdown(
            card
        )
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


def regulariser_rows(settings):
    """A Fig. 10 training table: {(regularizer, strength, adversarial weight or None): ([final random-label
    training accuracy per seed], [best real-data validation accuracy per seed])}, one logged step per run."""
    rows = []
    for (reg, s, w), (rand_accs, vals) in settings.items():
        for data, noise, accs in (("real", "none", vals), ("rand", "random", rand_accs)):
            for seed, acc in enumerate(accs):
                rows.append(
                    {
                        "run_id": f"{data}{reg}{s}{w}",
                        "seed": seed,
                        "step": 1,
                        "epoch": 1.0,
                        "train_acc": acc if noise == "random" else 1.0,
                        "train_loss": 1.0,
                        "val_acc": acc if noise == "none" else 0.1,
                        "input_noise": "none",
                        "input_noise_fraction": 0.0,
                        "label_noise": noise,
                        "label_noise_fraction": 1.0 if noise == "random" else 0.0,
                        "regularizer": reg,
                        "reg_strength": s,
                        "adversarial_weight": w,
                    }
                )
    return pd.DataFrame(rows)


def test_fig10_thresholds_are_the_papers():
    points = fig10_regularizers.regulariser_points(
        regulariser_rows(
            {
                ("none", 0.0, None): ([0.9], [0.98]),
                ("dropout", 0.6, None): ([0.55], [0.975]),
                ("dropout_adversarial", 0.3, 0.5): ([0.62], [0.97]),
            }
        )
    )
    verdict = fig10_regularizers.dropout_hinders_memorisation(points)
    assert not verdict.holds  # dropout cuts 35 points, but dropout + adversarial only 28
    assert "dropout 0.6: cut 0.350" in verdict.value
    assert "dropout_adversarial 0.3, w 0.5: cut 0.280" in verdict.value


def test_fig10_best_compares_matched_cuts_within_the_seeds_spread():
    """The combination against the others at every 0.1 of cut it reaches, interpolated along each curve, the
    best adversarial weight at each cut; a gap within the pooled standard error is a tie."""
    base = {("none", 0.0, None): ([0.90, 0.90], [0.980, 0.980])}
    dropout = {("dropout", 0.5, None): ([0.50, 0.50], [0.970, 0.970])}  # cut 0.4 at 1 point of cost
    weights = {  # at w 0.2 the combination is steep, at w 0.7 flat: its best curve is w 0.7's
        ("dropout_adversarial", 0.5, 0.2): ([0.60, 0.60], [0.950, 0.950]),
        ("dropout_adversarial", 0.5, 0.7): ([0.50, 0.50], [0.974, 0.974]),
    }
    p = fig10_regularizers.regulariser_points(regulariser_rows(base | dropout | weights))
    m = p.matched.set_index(["regularizer", "cut"])
    assert list(p.matched["cut"].unique()) == [0.1, 0.2, 0.3, 0.4]
    assert m.loc[("dropout_adversarial", 0.2), "curve"] == "dropout_adversarial, w 0.7"
    assert m.loc[("dropout_adversarial", 0.2), "val_acc"] == pytest.approx(0.980 - 0.006 * 0.2 / 0.4)
    assert m.loc[("dropout", 0.3), "val_acc"] == pytest.approx(0.980 - 0.010 * 0.3 / 0.4)
    best = fig10_regularizers.dropout_adversarial_best(p)
    assert best.holds and "cut 0.4: 0.9740 ± 0.0000 vs dropout 0.9700 ± 0.0000" in best.value

    # Dropout flatter by 2 validation digits of 500: with identical seeds the gap decides against the
    # combination; with seeds spread by ±0.004 the same means are a tie.
    flatter = {("dropout", 0.5, None): ([0.50, 0.50], [0.978, 0.978])}
    assert not fig10_regularizers.dropout_adversarial_best(
        fig10_regularizers.regulariser_points(regulariser_rows(base | flatter | weights))
    ).holds
    spread = {key: (x, [y[0] - 0.004, y[1] + 0.004]) for key, (x, y) in (base | flatter | weights).items()}
    assert fig10_regularizers.dropout_adversarial_best(
        fig10_regularizers.regulariser_points(regulariser_rows(spread))
    ).holds


def test_fig10_interpolation_and_its_standard_error():
    curve = pd.DataFrame({"cut": [0.0, 0.2, 0.6], "mean_real": [0.98, 0.97, 0.90], "se_real": [0.003, 0.004, 0.01]})
    value, se = fig10_regularizers.at_cut(curve, 0.4)  # halfway between the second and third settings
    assert value == pytest.approx(0.935) and se == pytest.approx(np.hypot(0.002, 0.005))
    assert fig10_regularizers.at_cut(curve, 0.2) == (0.97, 0.004)
    assert fig10_regularizers.at_cut(curve, 0.7) is None  # no setting cuts that much


def convergence_rows(epochs_by_level):
    """A Fig. 6 table: {(width, train_size): [epochs to fit at noise 0, 0.4, 0.8]} (None: never fit)."""
    rows = []
    for (width, size), epochs in epochs_by_level.items():
        for fraction, e in zip((0.0, 0.4, 0.8), epochs):
            rows.append(
                {
                    "run_id": f"{width}-{size}-{fraction}",
                    "seed": 0,
                    "width": width,
                    "train_size": size,
                    "epochs_to_fit": e,
                    "max_epochs": 100,
                    "input_noise": "gaussian" if fraction else "none",
                    "input_noise_fraction": fraction,
                    "label_noise": "none",
                    "label_noise_fraction": 0.0,
                }
            )
    return {"convergence": pd.DataFrame(rows).astype({"epochs_to_fit": "Int64"})}


def test_fig06_noise_fits_slower_at_every_width_and_size_or_fails_naming_where_not():
    slower = {(16, 1000): [20, 30, 40], (64, 1000): [10, 15, 30], (24, 100): [5, 8, 9], (24, 1000): [20, 30, 40]}
    verdict = evaluate("fig06_noise_fits_slower", convergence_rows(slower))
    assert verdict["holds"] is True and verdict["value"] == "5 of 5 points"  # 3 widths, 2 sizes
    faster = {**slower, (64, 1000): [26, 23, 30]}  # the default's widths 256/512: 80% noise fit in fewer epochs
    verdict = evaluate("fig06_noise_fits_slower", convergence_rows(faster))
    assert verdict["holds"] is False and verdict["value"] == "4 of 5 points (not at width 64)"
    assert evaluate("fig06_size_slows_all", convergence_rows(slower))["holds"] is True
    quicker = {**slower, (24, 100): [25, 8, 9]}  # clean data fits the small set slower than the large one
    assert evaluate("fig06_size_slows_all", convergence_rows(quicker))["holds"] is False
    tie = {**slower, (24, 100): [20, 8, 9]}  # as slowly: a tie is no violation (stats.not_below)
    assert evaluate("fig06_size_slows_all", convergence_rows(tie))["holds"] is True


def test_a_difference_within_the_seeds_spread_is_no_violation():
    """The one rule of every claim that compares means over seeds: a step the wrong way counts only when it
    exceeds the pooled standard error of the two means (fig07_final_accuracy's +0.001 at 20% input noise)."""
    from memorization.report.stats import monotone_within_spread, not_below

    assert not_below(0.984, 0.002, 0.985, 0.002) and not not_below(0.984, 0.0, 0.985, 0.0)
    assert monotone_within_spread([0.984, 0.985, 0.982, 0.969], [0.002] * 4, increasing=False)
    assert not monotone_within_spread([0.984, 0.985, 0.982, 0.969], [0.0] * 4, increasing=False)
    assert not monotone_within_spread([0.9, 0.95, 0.8], [0.01] * 3, increasing=False)  # 0.05 > 0.014
    assert monotone_within_spread([0.1, 0.3, 0.295], [0.0, 0.0, 0.01])


def test_fig04_diagonal_highest_in_every_row_of_both_conditions():
    def rows(matrix, noise):
        return [
            {"run_id": noise, "seed": 0, "step": 100, "class_i": i, "class_j": j, "value": v}
            | {"input_noise": noise, "input_noise_fraction": 1.0 if noise != "none" else 0.0}
            | {"label_noise": "none", "label_noise_fraction": 0.0}
            for (i, j), v in np.ndenumerate(matrix)
        ]

    diagonal = np.array([[3.0, 1.0], [1.0, 2.0]])
    table = pd.DataFrame(rows(diagonal, "none") + rows(diagonal * 2, "uniform"))
    verdict = evaluate("fig04_diagonal_highest", {"class_sensitivity": table})
    assert verdict["holds"] is True and verdict["value"] == "random inputs 2 of 2 rows, real data 2 of 2 rows"
    off = pd.DataFrame(rows(diagonal, "none") + rows(np.array([[3.0, 1.0], [4.0, 2.0]]), "uniform"))
    assert evaluate("fig04_diagonal_highest", {"class_sensitivity": off})["holds"] is False


def test_the_documented_claims_are_the_registry():
    from .conftest import ROOT

    text = (ROOT / "docs" / "science.md").read_text()
    begin, end = "<!-- generated: memorization claims --list -->\n", "<!-- end of generated part -->"
    assert text[text.index(begin) + len(begin) : text.index(end)] == claims.claims_markdown()


def test_the_readme_results_are_the_generated_scorecard():
    """docs/scorecard.md is a scorecard the workflow wrote (make readme-scorecard), with a row for every
    registered claim, not prose; the README's results section is its generated summary: per paper, the claims
    that hold and those that do not, each named, which agree with the page."""
    from .conftest import ROOT

    page = (ROOT / "docs/scorecard.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == list(registry.CLAIMS)
    failing = {row.split("`")[1] for row in rows if row.endswith("| **fails** |")}
    text = (ROOT / "README.md").read_text()
    begin, end = "<!-- scorecard: generated by `make readme-scorecard` -->\n", "<!-- end of scorecard -->"
    block = text[text.index(begin) + len(begin) : text.index(end)]
    assert "evaluated claims hold" in block and "[docs/scorecard.md](docs/scorecard.md)" in block
    assert set(re.findall(r"`(\w+)`", block)) == failing


def scores_rows(separation: float, seeds=3, n=60, seed=0) -> pd.DataFrame:
    """A scores table of one run with 20% noisy examples whose every score is shifted towards "hard" by
    `separation` standard deviations (0: the scores know nothing of the noise), each seed its own noise."""
    from memorization.report.stats import SCORE_DIRECTIONS

    rng = np.random.default_rng(seed)
    noisy = np.arange(n) < n // 5
    hard = rng.normal(size=n) + separation * noisy  # each example's hardness, shared by the seeds
    rows = []
    for s in range(seeds):
        value = hard + 0.3 * rng.normal(size=n)
        frame = {k: sign * value for k, sign in SCORE_DIRECTIONS.items()}
        rows.append(
            pd.DataFrame(
                {
                    "experiment": "e",
                    "run_id": "r",
                    "dataset": "mnist5k",
                    "seed": s,
                    "example": np.arange(n),
                    "is_noisy": noisy,
                    "input_noise": "none",
                    "input_noise_fraction": 0.0,
                    "label_noise": "random",
                    "label_noise_fraction": 0.2,
                    **frame,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_the_scores_claims_hold_when_the_scores_find_the_noise_and_fail_when_they_do_not():
    found, blind = {"scores": scores_rows(4.0)}, {"scores": scores_rows(0.0)}
    for name in ("pleiss2020_mislabeled_low_aum", "swayamdipta2020_mislabeled_hard_to_learn"):
        assert evaluate(name, found)["holds"] is True and evaluate(name, blind)["holds"] is False
    assert evaluate("toneva2019_noisy_forgotten_more", found)["holds"] is True
    assert evaluate("toneva2019_forgetting_consistent", found)["holds"] is True  # the seeds share the hardness
    unstable = scores_rows(4.0)
    unstable["forgetting"] = np.random.default_rng(5).normal(size=len(unstable))
    assert evaluate("toneva2019_forgetting_consistent", {"scores": unstable})["holds"] is False
    assert evaluate("paul2021_el2n_agrees_with_forgetting", {"scores": unstable})["holds"] is False
    clean = scores_rows(4.0).assign(is_noisy=False)
    assert evaluate("pleiss2020_mislabeled_low_aum", {"scores": clean})["value"].startswith("not computable")


def test_the_heldout_claims_read_memorization_from_the_subset_trainings():
    from .test_scores import heldout_rows

    rng = np.random.default_rng(0)
    S, N = 16, 40
    noisy = np.arange(N) < 8
    in_subset = rng.random((S, N)) < 0.5
    memorized = np.where(noisy, in_subset, True)  # noisy examples right only when trained on: memorized
    p = np.where(memorized, 0.9, 0.05)
    memorizing = heldout_rows(memorized, in_subset, p, noisy=noisy)
    verdict = evaluate("feldman2020_mislabeled_memorized", {"heldout": memorizing})
    assert verdict["holds"] is True and verdict["dataset"] == "digits"
    regular = np.ones((S, N), bool)  # every example right, trained on or not: nothing is memorized
    nothing_memorized = heldout_rows(regular, in_subset, p, noisy=noisy)
    verdict = evaluate("feldman2020_mislabeled_memorized", {"heldout": nothing_memorized})
    assert verdict["holds"] is False
    whole = heldout_rows(memorized, np.ones((S, N), bool), p, noisy=noisy)
    assert evaluate("jiang2021_mislabeled_low_cscore", {"heldout": whole})["value"].startswith("not computable")
