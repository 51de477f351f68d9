import numpy as np
import pytest
import torch

from memorization import config as S
from memorization.engine.data import build_noisy_dataset
from memorization.engine.models import Arch, example_losses, forward, init_params
from memorization.engine.sgd import load_state, train_step
from memorization.engine.timeline import Timeline, learning_rate
from memorization.engine.train import train_run
from memorization.measures.gini import gini
from memorization.measures.sensitivity import class_sensitivity, input_jacobian, loss_sensitivity, window_steps
from memorization.results.rundir import checkpoint_path

T = 12  # the loss whose sensitivity is checked is L_T, after T updates


@pytest.fixture(scope="module")
def tiny():
    spec = S.resolve(
        {
            "dataset": "digits",
            "train_size": 30,
            "width": 5,
            "depth": 1,
            "lr": 0.5,
            "batch_size": 6,
            "sampling": "replacement",
            "steps": 40,
            "loss": "smoothed_log",
            "momentum": 0.5,
        }
    )
    spec = spec.replace(seeds=[0, 1])
    data = build_noisy_dataset(spec.data)
    x = torch.as_tensor(data.x_train, dtype=torch.float64)
    y = torch.as_tensor(data.y_train)
    return spec, x, y


def loss_after_updates(spec, x_updates, x_loss, y, step):
    """L_step for each seed: train `step` updates on x_updates (the training code path), then evaluate the
    batch of that step on x_loss. With x_loss unperturbed this is the loss with the direct path cut."""
    return example_losses_after_updates(spec, x_updates, x_loss, y, step)[0].mean(1)


def batches_up_to(spec, n, seed_pos, step):
    timeline = Timeline.from_spec(spec, n)
    return [
        set(timeline.batch(timeline.epoch_order(spec.seeds, s // timeline.steps_per_epoch), s)[seed_pos].tolist())
        for s in range(step + 1)
    ]


def test_loss_sensitivity_matches_central_finite_differences(tiny):
    spec, x, y = tiny
    # one row (one output step) for all seeds, over segments of 5 steps
    ((_, jac),) = list(input_jacobian(spec, x, y, 10, [T], chunk=8, segment=5))
    seed_pos = 1
    batches = batches_up_to(spec, len(y), seed_pos, T)
    earlier = set().union(*batches[:T])
    in_batch = sorted(batches[T] & earlier)  # its direct path to L_T exists and is cut
    indirect = sorted(earlier - batches[T])  # influences L_T only through the updates
    never = sorted(set(range(len(y))) - earlier - batches[T])
    assert in_batch and indirect
    eps = 1e-6
    checked = {"in batch": 0, "indirect": 0}
    # L_T reads a pixel's first-layer weights only through step T's batch: two pixels that batch uses most
    pixels = x[sorted(batches[T])].reshape(len(batches[T]), -1).abs().sum(0).topk(2).indices.tolist()
    for kind, examples in (("in batch", in_batch), ("indirect", indirect)):
        for n in examples:
            for d in pixels:
                plus, minus = x.clone(), x.clone()
                plus[n].view(-1)[d] += eps
                minus[n].view(-1)[d] -= eps
                fd = (loss_after_updates(spec, plus, x, y, T) - loss_after_updates(spec, minus, x, y, T))[seed_pos]
                fd = fd / (2 * eps)
                analytic = jac[0, seed_pos, n].reshape(-1)[d]
                # an example whose hidden units were all inactive when it was used has no influence: both 0
                assert abs(analytic - fd) <= 1e-4 * abs(fd) + 1e-12, (n, d, float(analytic), float(fd))
                checked[kind] += bool(abs(fd) > 1e-9)
    assert checked["in batch"] >= 2 and checked["indirect"] >= 4, checked
    for n in never:  # an example no update used has no influence
        assert jac[0, seed_pos, n].abs().max() == 0
    # that seeds do not mix: test_seeds_computed_together_equal_each_seed_alone


def test_replay_reproduces_the_trained_checkpoint(tiny, tmp_path):
    spec, x, y = tiny
    data = build_noisy_dataset(spec.data)
    run = spec.replace(checkpoints={"unit": "step", "at": [20]})
    train_run(run, data, tmp_path, progress=False)
    saved = load_state(checkpoint_path(tmp_path, 20))
    # replay from the initialisation vs from the checkpoint at step 20: the window after 20 is the same
    full = loss_sensitivity(run, x, y, 10, 40, window=10, stride=2)
    resumed = loss_sensitivity(run, x, y, 10, 40, window=10, stride=2, run_dir=tmp_path, horizon=10)
    assert saved["step"] == 20
    assert full.shape == (2, 30) and (full >= 0).all()
    # truncating the unroll at step 20 drops the influence of earlier updates: smaller, same ordering trend
    assert (resumed <= full + 1e-12).float().mean() > 0.5
    assert np.corrcoef(full.flatten(), resumed.flatten())[0, 1] > 0.5


def test_window_is_the_last_steps_at_a_stride():
    assert window_steps(500, 500, 2) == list(range(0, 500, 2))[:0] + list(range(0, 499, 2))[0:250]
    assert window_steps(1000, 500, 2)[0] == 500 and window_steps(1000, 500, 2)[-1] == 998
    assert window_steps(3, 500, 2) == [1]


def test_class_sensitivity_has_off_diagonal_mass(tiny):
    spec, x, y = tiny
    cs = class_sensitivity(spec, x, y, 10, 30, window=10, stride=2)
    assert cs.shape == (2, 10, 10)
    present = torch.unique(y)
    block = cs[:, present][:, :, present]
    off = block[:, ~torch.eye(len(present), dtype=bool)]
    assert (off > 0).float().mean() > 0.5  # through the updates, classes influence each other
    rows_with_mass = block.sum(2) > 0  # a class absent from every window batch has an all-zero row
    assert rows_with_mass.float().mean() > 0.7
    assert (block.diagonal(dim1=1, dim2=2)[rows_with_mass] > 0).all()


def test_gini_known_values_and_pairwise_definition():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 100):
        v = rng.random(n)
        pairwise = np.abs(v[:, None] - v[None, :]).sum() / (2 * n * v.sum())
        assert gini(v) == pytest.approx(pairwise, rel=1e-12)
    assert gini(np.full(10, 3.0)) == 0.0
    assert gini(np.eye(1, 50)[0]) == pytest.approx(49 / 50)
    assert gini([1e-9, 2e-9, 3e-9]) == pytest.approx(gini([1, 2, 3]))  # scale-free, no epsilon shift
    assert np.isnan(gini(np.zeros(5)))
    with pytest.raises(ValueError, match="non-negative"):
        gini([0.5, -0.1])


def example_losses_after_updates(spec, x_updates, x_loss, y, step):
    """Each batch example's own loss at step `step` (per seed), inputs of the loss batch from x_loss."""
    arch = Arch.from_spec(spec, tuple(x_updates.shape[1:]), 10)
    timeline = Timeline.from_spec(spec, len(y))
    params, buffers = init_params(arch, spec.seeds)
    params = {k: v.double() for k, v in params.items()}
    velocity = {k: torch.zeros_like(v) for k, v in params.items()}
    for s in range(step):
        idx = timeline.batch(timeline.epoch_order(spec.seeds, s // timeline.steps_per_epoch), s)
        train_step(
            arch,
            params,
            buffers,
            velocity,
            x_updates[idx],
            y[idx],
            lr=learning_rate(spec, 0),
            momentum=spec.momentum,
            groups=[slice(0, 2)],
            loss=spec.loss,
        )
    idx = timeline.batch(timeline.epoch_order(spec.seeds, step // timeline.steps_per_epoch), step)
    logits, _ = forward(arch, params, buffers, x_loss[idx], train=True)
    return example_losses(logits, y[idx], spec.loss), idx


def test_the_authors_class_sensitivity_keeps_the_direct_path_and_averages_per_example_norms(tiny):
    """Their code: one norm per (last-batch example b, training input x), direct path kept, then the mean
    over the x of class j and over the b of class i. Checked against finite differences of ℓ_b and by
    aggregating the Jacobian by hand."""
    spec, x, y = tiny
    jacobians = input_jacobian(spec, x, y, 10, [T], by="example", direct=True, chunk=4, segment=5)
    jac = torch.cat([j for _, j in jacobians])  # (B, S, N, ...)
    _, idx = example_losses_after_updates(spec, x, x, y, T)
    seed_pos, b = 1, 2
    n_direct = int(idx[seed_pos, b])  # in the batch: its own loss depends on it directly (and through updates)
    eps = 1e-6
    for n in (n_direct, int(idx[seed_pos, 0])):
        plus, minus = x.clone(), x.clone()
        plus[n].view(-1)[27] += eps
        minus[n].view(-1)[27] -= eps
        fd = (
            example_losses_after_updates(spec, plus, plus, y, T)[0]
            - example_losses_after_updates(spec, minus, minus, y, T)[0]
        )[seed_pos, b] / (2 * eps)
        analytic = jac[b, seed_pos, n].reshape(-1)[27]
        assert abs(fd) > 1e-9 and abs(analytic - fd) / abs(fd) < 1e-4, (n, float(analytic), float(fd))
    # the aggregation: mean over inputs of class j of the mean-abs norm, then over batch examples of class i
    norms = jac.abs().flatten(3).mean(3).transpose(0, 1)  # (S, B, N)
    cs = class_sensitivity(spec, x, y, 10, T + 1, variant="authors")
    labels = y[idx[seed_pos]]
    i, j = int(labels[b]), int(y[0])
    expected = norms[seed_pos][labels == i][:, y == j].mean()
    torch.testing.assert_close(cs[seed_pos, i, j], expected)
    absent = sorted(set(range(10)) - set(labels.tolist()))
    assert all(torch.isnan(cs[seed_pos, a]).all() for a in absent)  # no example of that class in the batch


def test_seeds_computed_together_equal_each_seed_alone(tiny):
    """One backward row serves every seed (the seeds are independent copies of the run): the sensitivities of
    a two-seed run equal those of each seed replayed alone, per example, per class pair, in both variants."""
    spec, x, y = tiny
    alone = [spec.replace(seeds=[seed]) for seed in spec.seeds]
    both = loss_sensitivity(spec, x, y, 10, 20, window=8, stride=2, chunk=3)
    assert not torch.allclose(both[0], both[1])  # two different runs, so the check can fail
    torch.testing.assert_close(both, torch.cat([loss_sensitivity(a, x, y, 10, 20, window=8, stride=2) for a in alone]))
    for variant in ("paper", "authors"):
        both = class_sensitivity(spec, x, y, 10, 20, window=8, stride=4, variant=variant, chunk=7)
        each = torch.cat([class_sensitivity(a, x, y, 10, 20, window=8, stride=4, variant=variant) for a in alone])
        torch.testing.assert_close(both, each, equal_nan=True)


@pytest.mark.parametrize(
    "by, direct, out_steps, horizon, segment",
    [
        ("batch", False, [9, 13, 21, 22, 27], None, 4),  # outputs across segments, one at a segment start
        ("batch", False, [21, 27], 6, 1),  # a horizon; every step its own segment
        ("class", False, [14, 25], None, 7),
        ("example", True, [23], None, 5),  # the authors' per-class code: the direct path kept
    ],
)
def test_segmented_sweep_equals_the_whole_unrolled_graph(tiny, by, direct, out_steps, horizon, segment):
    """The segmented reverse sweep (stored states, one segment's graph at a time, cotangents carried between
    segments) gives the Jacobian of the replay that keeps the whole graph, to 1e-10 of its largest entry (float64)."""
    from tests.reference_replay import input_jacobian as whole_jacobian
    from tests.reference_replay import replay_losses as whole_replay

    spec, x, y = tiny
    batches, L = whole_replay(spec, x, y, 10, out_steps, by=by, direct=direct, horizon=horizon)
    expected = torch.cat([j for _, j in whole_jacobian(batches, L, len(y), chunk=7)])
    got = torch.cat(
        [
            j
            for _, j in input_jacobian(
                spec, x, y, 10, out_steps, by=by, direct=direct, horizon=horizon, chunk=7, segment=segment
            )
        ]
    )
    scale = float(expected.abs().max())
    assert scale > 1e-6 and got.shape == expected.shape  # the check can fail
    assert float((got - expected).abs().max()) <= 1e-10 * scale


@pytest.mark.parametrize(
    "overrides",
    [
        {"regularizer": "dropout", "reg_strength": 0.3},  # the masks of each step, through the curvature too
        {"regularizer": "weight_decay", "reg_strength": 0.05},
        {"regularizer": "input_dropout", "reg_strength": 0.2, "loss": "cross_entropy"},
        {"arch": "cnn", "cnn_channels": 2, "cnn_dense": [4], "crop": 0},  # BatchNorm: torch.func's curvature
    ],
)
def test_the_sweep_equals_the_whole_graph_with_regularizers_and_the_cnn(tiny, overrides):
    from tests.reference_replay import input_jacobian as whole_jacobian
    from tests.reference_replay import replay_losses as whole_replay

    base, x, y = tiny
    spec = S.resolve(
        {
            **{k: getattr(base, k) for k in ("dataset", "train_size", "lr", "batch_size", "sampling", "steps")},
            "width": 5,
            "depth": 2,
            "momentum": 0.5,
            "loss": "smoothed_log",
            **overrides,
        }
    )
    spec = spec.replace(seeds=[0, 1])
    out_steps = [9, 14]
    batches, L = whole_replay(spec, x, y, 10, out_steps)
    expected = torch.cat([j for _, j in whole_jacobian(batches, L, len(y), chunk=7)])
    got = torch.cat([j for _, j in input_jacobian(spec, x, y, 10, out_steps, segment=4)])
    scale = float(expected.abs().max())
    assert scale > 1e-6 and got.shape == expected.shape
    assert not got.requires_grad  # the sweep keeps no graph of the steps it has swept (torch.func's curvature)
    assert float((got - expected).abs().max()) <= 1e-10 * scale
