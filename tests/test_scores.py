"""The per-example scores (memorization.scores): each against its definition worked by hand or computed another
way, AUM against the `aum` package, and the presentations the training step records against a replay of
training from its checkpoints."""

import numpy as np
import pandas as pd
import pytest
import torch

from memorization import config as S
from memorization.engine.data import build_noisy_dataset
from memorization.engine.models import Arch, example_losses, forward
from memorization.engine.sgd import load_state, margins
from memorization.engine.timeline import Timeline
from memorization.engine.train import train_run
from memorization.measures.scores import (
    class_normalized,
    data_map,
    el2n,
    grand,
    heldout_frame,
    label_logit_input_gradients,
    nearest_checkpoint,
    presentation_scores,
    read_presentations,
    scores_frame,
    vog,
)
from memorization.report.stats import SCORE_DIRECTIONS, c_scores, heldout_estimates, roc_auc, seed_stability
from memorization.results.rundir import checkpoint_path, eval_path, presentations_path

from .test_faults import interrupted


def make(**keys):
    spec = S.resolve(
        {"dataset": "digits", "train_size": 96, "width": 16, "epochs": 4, "lr": 0.05, **keys}, seeds=[0, 1]
    )
    return spec, build_noisy_dataset(spec.data)


def test_forgetting_events_and_first_learned_follow_a_hand_worked_sequence():
    # example 0: 0 1 1 0 1 0 → learned at presentation 1, forgotten twice (1→0 at positions 3 and 5)
    # example 1: 1 1 1 → learned at once, never forgotten (unforgettable)
    # example 2: 0 0 → never learned: its forgetting score is its presentation count, the maximum
    # example 3: never presented
    example = np.array([0, 1, 0, 2, 0, 1, 0, 2, 0, 1, 0])
    correct = np.array([0, 1, 1, 0, 1, 1, 0, 0, 1, 1, 0], dtype=bool)
    margin = np.arange(11, dtype=np.float32)
    out = presentation_scores(example, correct, margin, 4)
    assert out["presentations"].tolist() == [6, 3, 2, 0]
    assert out["forgetting_events"].tolist() == [2, 0, 0, 0]
    assert out["never_learned"].tolist() == [False, False, True, True]
    assert out["forgetting"].tolist() == [2.0, 0.0, 2.0, 0.0]
    assert out["first_learned"].tolist() == [2, 1, -1, -1]  # positions in time of the first correct one
    np.testing.assert_allclose(out["aum"][:3], [np.mean([0, 2, 4, 6, 8, 10]), np.mean([1, 5, 9]), np.mean([3, 7])])
    assert np.isnan(out["aum"][3])


def test_aum_is_the_aum_package_on_the_same_logits(tmp_path):
    aum = pytest.importorskip("aum")
    gen = torch.Generator().manual_seed(0)
    calc = aum.AUMCalculator(str(tmp_path), compressed=True)
    examples, logged_margins = [], []
    for _ in range(30):  # 30 mini-batches of 8 from 20 examples, 5 classes, with replacement
        ids = torch.randint(20, (8,), generator=gen)
        logits = torch.randn(8, 5, generator=gen) * 3
        y = ids % 5
        calc.update(logits, y, ids.tolist())
        examples.append(ids.numpy())
        logged_margins.append(margins(logits[None], y[None])[0].numpy())
    ours = presentation_scores(np.concatenate(examples), np.zeros(240, bool), np.concatenate(logged_margins), 20)
    calc.finalize()
    theirs = pd.read_csv(tmp_path / "aum_values.csv").set_index("sample_id")["aum"]
    np.testing.assert_allclose(ours["aum"][theirs.index.to_numpy()], theirs.to_numpy(), rtol=1e-6)


def test_the_training_step_records_each_presentation_as_its_forward_pass_saw_it(tmp_path):
    # a checkpoint before every step: the recorded margin of a presentation at step t is the margin of the
    # model of step t - 1 on that example (no stochastic layer: train and eval mode agree for the MLP)
    spec, data = make(epochs=2, checkpoints={"unit": "step", "every": 1}, batch_size=40)  # 3 steps per epoch
    train_run(spec, data, tmp_path, progress=False)
    timeline = Timeline.from_spec(spec, 96)
    example, step, correct, margin = read_presentations(spec, timeline, tmp_path)
    assert example.shape == (2, 192) and step[0, 0] == 1 and step[0, -1] == 6
    assert sorted(example[1, :96].tolist()) == list(range(96))  # one epoch: every example once
    arch = Arch.from_spec(spec, data.x_train.shape[1:], data.n_classes)
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    for t in (1, 4, 6):
        state = load_state(checkpoint_path(tmp_path, t - 1))
        logits, _ = forward(arch, state["params"], state["buffers"], x, train=False)
        at = step[0] == t
        for s in (0, 1):
            ids = torch.as_tensor(example[s, at])
            expected = margins(logits[s : s + 1, ids], y[ids][None])[0]
            np.testing.assert_allclose(margin[s, at], expected.numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(correct[s, at], (logits[s, ids].argmax(-1) == y[ids]).numpy())


@pytest.mark.parametrize("checkpoints", [{"unit": "epoch", "every": 2}, {"unit": "step", "every": 2}])
def test_a_resumed_run_records_the_same_presentations(tmp_path, checkpoints):
    # killed in epoch 4 (3 steps an epoch); resumed from the checkpoint at epoch 2 or from one inside an epoch
    spec, data = make(checkpoints=checkpoints)
    whole, part = interrupted(tmp_path, spec, data, at_step=10, resume_every_s=3600)
    train_run(spec, data, part, progress=False)
    for epoch in range(4):
        with np.load(presentations_path(whole, epoch)) as a, np.load(presentations_path(part, epoch)) as b:
            np.testing.assert_array_equal(a["correct"], b["correct"])
            np.testing.assert_array_equal(a["margin"], b["margin"])


def test_a_run_that_ends_inside_an_epoch_records_the_presentations_it_had(tmp_path):
    spec, data = make(steps=4, checkpoints={"unit": "step", "at": [4]})  # 3 steps an epoch: one more batch
    train_run(spec, data, tmp_path, progress=False)
    with np.load(presentations_path(tmp_path, 1)) as f:
        assert f["correct"].shape == (2, 32) and np.isfinite(f["margin"]).all()


def test_data_map_is_mean_std_and_fraction_correct_over_epochs():
    p = np.array([[[0.2, 0.9]], [[0.4, 0.9]], [[0.9, 0.9]]])  # (E=3, S=1, N=2)
    c = p > 0.5
    m = data_map(p, c)
    np.testing.assert_allclose(m["confidence"], [[0.5, 0.9]])
    np.testing.assert_allclose(m["variability"], [[np.sqrt(((0.2 - 0.5) ** 2 + 0.1**2 + 0.4**2) / 3), 0.0]], atol=1e-12)
    np.testing.assert_allclose(m["correctness"], [[1 / 3, 1.0]])


@pytest.mark.parametrize(
    "arch", [{"arch": "mlp", "width": 16}, {"arch": "cnn", "cnn_channels": 4, "cnn_dense": [8, 6], "momentum": 0.9}]
)
def test_grand_is_the_norm_of_each_examples_gradient_over_every_parameter(tmp_path, arch):
    spec, data = make(epochs=1, **arch)
    train_run(spec, data, tmp_path, progress=False)
    model = Arch.from_spec(spec, data.x_train.shape[1:], data.n_classes)
    state = load_state(checkpoint_path(tmp_path, 3))
    x, y = torch.as_tensor(data.x_train[:10]), torch.as_tensor(data.y_train[:10])
    fast = grand(model, state["params"], state["buffers"], x, y, "cross_entropy", chunk=4)
    for s in (0, 1):
        for i in range(10):  # one example at a time, by autograd of a one-seed model
            p = {k: v[s : s + 1].clone().requires_grad_(True) for k, v in state["params"].items()}
            b = {k: v[s : s + 1] for k, v in state["buffers"].items()}
            logits, _ = forward(model, p, b, x[i : i + 1], train=False)
            grads = torch.autograd.grad(example_losses(logits, y[i : i + 1])[0, 0], list(p.values()))
            expected = torch.sqrt(sum((g**2).sum() for g in grads))
            torch.testing.assert_close(fast[s, i], expected, rtol=1e-4, atol=1e-6)


def test_el2n_is_the_distance_of_the_softmax_from_the_one_hot_label():
    logits = torch.tensor([[[0.0, 0.0], [10.0, -10.0]]])  # (S=1, N=2, C=2)
    out = el2n(logits, torch.tensor([0, 1]))
    expected = torch.tensor([[np.sqrt(0.5), np.sqrt(2.0)]], dtype=torch.float32)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_vog_is_the_per_pixel_std_over_checkpoints_of_the_label_logits_input_gradient_averaged(tmp_path):
    spec, data = make(checkpoints={"unit": "epoch", "every": 1})
    train_run(spec, data, tmp_path, progress=False)
    model = Arch.from_spec(spec, data.x_train.shape[1:], data.n_classes)
    x, y = torch.as_tensor(data.x_train[:6]), torch.as_tensor(data.y_train[:6])
    steps = [3, 6, 9, 12]
    per_checkpoint = []
    for t in steps:  # one example, one seed at a time
        state = load_state(checkpoint_path(tmp_path, t))
        rows = []
        for s in (0, 1):
            p = {k: v[s : s + 1] for k, v in state["params"].items()}
            g = []
            for i in range(6):
                xi = x[i : i + 1].clone().requires_grad_(True)
                logits, _ = forward(model, p, {}, xi, train=False)
                g.append(torch.autograd.grad(logits[0, 0, y[i]], xi)[0][0])
            rows.append(torch.stack(g))
        per_checkpoint.append(torch.stack(rows))
    grads = torch.stack(per_checkpoint).double()  # (K, S, N, C, H, W)
    expected = grads.std(0, unbiased=False).flatten(2).mean(2)
    sums = [sum(label_logit_input_gradients(model, load_state(checkpoint_path(tmp_path, t))["params"], {}, x, y)
                .double() ** power for t in steps) for power in (1, 2)]  # fmt: skip
    torch.testing.assert_close(vog(sums[0], sums[1], len(steps)), expected, rtol=1e-6, atol=1e-9)


def test_class_normalisation_standardises_within_each_label():
    values = np.array([[1.0, 3.0, 10.0, 20.0, 30.0]])
    out = class_normalized(values, np.array([0, 0, 1, 1, 1]))
    np.testing.assert_allclose(out, [[-1.0, 1.0, -np.sqrt(1.5), 0.0, np.sqrt(1.5)]])


def test_nearest_checkpoint_skips_the_initialisation():
    assert nearest_checkpoint((0, 3, 6, 12), 0.0) == 3
    assert nearest_checkpoint((0, 3, 6, 12), 4.5) == 3  # a tie: the earlier
    assert nearest_checkpoint((0, 3, 6, 12), 10) == 12


def test_the_scores_of_a_run_with_label_noise_find_its_noisy_examples(tmp_path):
    spec, data = make(epochs=12, width=64, label_noise="random", label_noise_fraction=0.25, lr=0.1)
    train_run(spec, data, tmp_path, progress=False)
    settings = S.load_config({"experiments": {"e": {}}}).metric_settings("scores", "digits")
    frame = scores_frame(spec, data, tmp_path, settings)
    assert len(frame) == 2 * 96 and (frame["presentations"] == 12).all() and (frame["early_step"] == 6).all()
    assert frame["vog"].notna().all() and (frame["vog_checkpoints"] == 12).all()
    noisy = frame.groupby("is_noisy")[["aum", "forgetting", "confidence", "el2n"]].mean()
    assert noisy.loc[True, "aum"] < noisy.loc[False, "aum"]  # mislabeled: low margin (Pleiss et al.)
    assert noisy.loc[True, "confidence"] < noisy.loc[False, "confidence"]
    assert noisy.loc[True, "el2n"] > noisy.loc[False, "el2n"]


# ----------------------------------------------------------------------------- subset trainings


def test_each_seed_trains_on_its_own_subset_drawn_from_the_seed_alone(tmp_path):
    spec, data = make(subset_fraction=0.5, epochs=3, checkpoints={"unit": "epoch", "at": [3]})
    timeline = Timeline.from_spec(spec, 96)
    assert timeline.steps_per_epoch == 2 and timeline.presentations_per_epoch() == 48  # 48 of 96, batches of 32
    first, second = timeline.subset(0), timeline.subset(1)
    assert len(first) == 48 and not torch.equal(first, second)
    assert torch.equal(Timeline.from_spec(spec.replace(epochs=9), 96).subset(0), first)  # the seed's, whatever else
    train_run(spec, data, tmp_path, progress=False)
    example, _, _, _ = read_presentations(spec, timeline, tmp_path)
    for row, seed in enumerate(spec.seeds):
        assert set(example[row].tolist()) == set(timeline.subset(seed).tolist())  # batches only from its subset
    frame = heldout_frame(spec, data, tmp_path)
    assert frame.groupby("seed")["in_subset"].sum().tolist() == [48, 48]
    with np.load(eval_path(tmp_path, 6)) as ev:  # the training accuracy is the seed's on its own subset
        mask = timeline.subset_mask(spec.seeds)
        np.testing.assert_allclose(ev["train_acc"], (ev["correct"] & mask).sum(1) / 48, rtol=1e-6)


def test_a_subset_fraction_of_one_is_the_whole_set_and_leaves_the_run_id_alone():
    spec, _ = make()
    assert spec.run_id == spec.replace(subset_fraction=1.0).run_id
    assert torch.equal(Timeline.from_spec(spec, 96).subset(3), torch.arange(96))


def heldout_rows(correct, in_subset, p_label, fraction=0.5, noisy=None):
    """A heldout table: (S, N) arrays, identity columns of one run."""
    S_, N = np.shape(correct)
    return pd.DataFrame(
        {
            "experiment": "e",
            "run_id": f"r{fraction}",
            "dataset": "digits",
            "input_noise": "none",
            "input_noise_fraction": 0.0,
            "label_noise": "random",
            "label_noise_fraction": 0.2,
            "seed": np.repeat(np.arange(S_), N),
            "example": np.tile(np.arange(N), S_),
            "is_noisy": np.tile(noisy if noisy is not None else np.zeros(N, bool), S_),
            "subset_fraction": fraction,
            "in_subset": np.asarray(in_subset).reshape(-1),
            "correct": np.asarray(correct).reshape(-1),
            "p_label": np.asarray(p_label, dtype=float).reshape(-1),
        }
    )


def test_heldout_memorization_and_the_c_score_follow_their_definitions():
    # 4 models, 2 examples: example 0 is right whenever trained on and wrong when held out (memorized);
    # example 1 is right by every model (regular)
    in_subset = np.array([[1, 1], [1, 0], [0, 1], [0, 0]], bool)
    correct = np.array([[1, 1], [1, 1], [0, 1], [0, 1]], bool)
    p = np.array([[0.9, 0.8], [0.7, 0.6], [0.2, 0.9], [0.4, 0.7]])
    est = heldout_estimates(heldout_rows(correct, in_subset, p)).set_index("example")
    assert est.loc[0, "memorization"] == 1.0 and est.loc[1, "memorization"] == 0.0
    assert est.loc[0, "self_confidence"] == pytest.approx(0.3) and est.loc[1, "self_confidence"] == pytest.approx(0.65)
    assert est.loc[0, "n_in"] == 2 and est.loc[0, "n_out"] == 2
    other = heldout_rows(np.array([[1, 1]] * 4, bool), in_subset, p, fraction=0.7)  # at 0.7 both are right
    both = heldout_estimates(pd.concat([heldout_rows(correct, in_subset, p), other], ignore_index=True))
    cs = c_scores(both).set_index("example")
    assert cs.loc[0, "c_score"] == 0.5 and cs.loc[1, "c_score"] == 1.0 and (cs["ratios"] == 2).all()


def test_self_confidence_is_cleanlabs_on_the_held_out_models_mean_probabilities():
    cleanlab = pytest.importorskip("cleanlab.rank")
    rng = np.random.default_rng(0)
    S_, N, C = 12, 30, 4
    probs = rng.dirichlet(np.ones(C), size=(S_, N))  # each model's predicted probabilities
    labels = rng.integers(C, size=N)
    in_subset = rng.random((S_, N)) < 0.5
    in_subset[0], in_subset[1] = True, False  # every example both trained on and held out somewhere
    p_label = probs[:, np.arange(N), labels]
    est = heldout_estimates(heldout_rows(p_label > 0.5, in_subset, p_label)).set_index("example")
    out_of_sample = np.stack([probs[~in_subset[:, i], i].mean(0) for i in range(N)])  # (N, C)
    theirs = cleanlab.get_label_quality_scores(labels, out_of_sample, method="self_confidence", adjust_pred_probs=False)
    np.testing.assert_allclose(est["self_confidence"].to_numpy(), theirs, rtol=1e-9)


def test_roc_auc_is_scikit_learns_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    score, positive = rng.integers(5, size=200).astype(float), rng.random(200) < 0.3
    assert roc_auc(score, positive) == pytest.approx(roc_auc_score(positive, score))
    assert roc_auc([1.0, np.nan, 3.0], [False, True, True]) == 1.0  # an example without a score is left out
    assert np.isnan(roc_auc([1.0, 2.0], [True, True]))


def test_seed_stability_is_the_mean_spearman_over_seed_pairs():
    rows = []
    for seed, values in enumerate([[1, 2, 3, 4], [1, 2, 3, 4], [4, 3, 2, 1]]):
        for ex, v in enumerate(values):
            rows.append({"run_id": "r", "seed": seed, "example": ex, **{k: float(v) for k in SCORE_DIRECTIONS}})
    stability = seed_stability(pd.DataFrame(rows), ["aum"])
    assert stability.loc["aum", "spearman"] == pytest.approx((1 - 1 - 1) / 3) and stability.loc["aum", "pairs"] == 3


def test_each_score_is_oriented_as_its_paper_reads_it_and_a_reversed_one_is_named():
    """The data map's mislabeled examples are hard to learn: low confidence and low variability (Swayamdipta
    et al.), so low variability finds them; VoG keeps its paper's high-is-hard, and where the noisy examples
    have the lower VoG, its AUC is below 0.5 and the findings say so."""
    from memorization.papers.scores import score_agreement

    assert SCORE_DIRECTIONS["variability"] == -1 and SCORE_DIRECTIONS["vog"] == 1
    rows = []
    for seed in (0, 1):
        for ex in range(8):
            noisy = ex < 4  # the noisy examples: never learned, so low confidence, variability and VoG
            values = {k: d * float(noisy) + ex / 100 for k, d in SCORE_DIRECTIONS.items()}  # hard as declared
            values |= {"confidence": 0.1 if noisy else 0.9, "variability": 0.02 if noisy else 0.2 + ex / 100}
            values |= {"vog": -1.0 + ex / 100 if noisy else 1.0}
            rows.append({"run_id": "r", "seed": seed, "example": ex, "is_noisy": noisy, "dataset": "digits",
                         "input_noise": "none", "input_noise_fraction": 0.0, "label_noise": "random",
                         "label_noise_fraction": 0.5, **values})  # fmt: skip
    s = score_agreement.scores_statistic(pd.DataFrame(rows))
    auc = s.detection.set_index("score")["auc"]
    assert auc["variability"] == 1.0 and auc["confidence"] == 1.0 and auc["vog"] == 0.0
    assert (
        "below 0.5, so ranking the noisy examples the other way round from its paper: vog"
        in score_agreement.findings(s)
    )
