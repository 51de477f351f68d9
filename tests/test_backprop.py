"""The training step's gradient written out for the MLP (memorization.backprop) against autograd of the same
loss, for both losses, every stochastic layer and weight decay's step; and the step the engine takes with it."""

import pytest
import torch

from memorization.engine import backprop
from memorization.engine.models import Arch, example_losses, forward, init_params
from memorization.engine.regularizers import Regularizer, layer_noise
from memorization.engine.sgd import train_step

MLP = Arch("mlp", (1, 4, 4), 7, hidden=(6, 5))
REGULARIZERS = [
    Regularizer(),
    Regularizer("dropout", 0.4),
    Regularizer("input_dropout", 0.3),
    Regularizer("input_noise", 0.5),
    Regularizer("hidden_noise", 0.3),
]


def setup(seeds=3, batch=5, dtype=torch.float64):
    gen = torch.Generator().manual_seed(2)
    params, _ = init_params(MLP, list(range(seeds)))
    params = {k: (v + 0.3 * torch.randn(v.shape, generator=gen)).to(dtype) for k, v in params.items()}
    x = torch.rand(seeds, batch, *MLP.in_shape, generator=gen, dtype=dtype)
    y = torch.randint(MLP.n_classes, (seeds, batch), generator=gen)
    return params, x, y


def by_autograd(params, x, y, loss, noise):
    leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    logits, _ = forward(MLP, leaves, {}, x, train=True, noise=noise.again() if noise else None)
    losses = example_losses(logits, y, loss)
    grads = torch.autograd.grad(losses.mean(1).sum(), list(leaves.values()))
    return dict(zip(leaves, grads)), losses.detach(), logits.detach()


@pytest.mark.parametrize("loss", ["cross_entropy", "smoothed_log"])
@pytest.mark.parametrize("reg", REGULARIZERS, ids=lambda r: r.kind)
def test_the_mlps_written_out_gradient_equals_autograds(loss, reg):
    params, x, y = setup()
    noise = layer_noise(reg, [0, 1, 2], 7, "cpu")
    grads, losses, logits, buffers = backprop.loss_gradients(MLP, params, {}, x, y, loss, noise)
    assert isinstance(grads["fc1.weight"], backprop.OuterProduct)  # the kernels' gradients in their factors
    grads = backprop.dense_gradients(grads)
    expected, expected_losses, expected_logits = by_autograd(params, x, y, loss, noise)
    assert buffers == {}
    torch.testing.assert_close(logits, expected_logits, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(losses, expected_losses, rtol=1e-12, atol=1e-14)
    for k in expected:
        assert float(expected[k].abs().max()) > 1e-4  # every parameter's gradient is exercised
        torch.testing.assert_close(grads[k], expected[k], rtol=1e-10, atol=1e-13)


def test_each_seeds_gradient_is_its_own():
    """The seeds' losses are summed, so seed s's gradient is that of its solo run: changing seed 0's labels
    changes seed 0's gradient only."""
    params, x, y = setup()
    grads = backprop.dense_gradients(backprop.loss_gradients(MLP, params, {}, x, y, "cross_entropy", None)[0])
    y2 = y.clone()
    y2[0] = (y2[0] + 1) % MLP.n_classes
    other = backprop.dense_gradients(backprop.loss_gradients(MLP, params, {}, x, y2, "cross_entropy", None)[0])
    for k in grads:
        assert not torch.allclose(grads[k][0], other[k][0])
        torch.testing.assert_close(grads[k][1:], other[k][1:], rtol=0, atol=0)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize(
    "reg", [Regularizer(), Regularizer("weight_decay", 0.01), Regularizer("dropout", 0.3)], ids=str
)
def test_the_training_step_with_the_written_out_gradient_is_autograds_step(reg, momentum, monkeypatch):
    """One train_step (with or without momentum, weight decay or dropout) from the same state, once as the
    engine takes it (the kernels' gradients in their factors, inside the update's products) and once with
    every gradient by autograd: the same parameters and momentum in float32 to rounding."""
    params, x, y = setup(dtype=torch.float32)

    def step(params):
        params = {k: v.clone() for k, v in params.items()}
        velocity = {k: torch.full_like(v, 0.01) for k, v in params.items()}
        groups = [slice(0, 2), slice(2, 3)]
        report = train_step(MLP, params, {}, velocity, x, y, lr=0.1, momentum=momentum, groups=groups, reg=reg,
                            seeds=[0, 1, 2], step=4)  # fmt: skip
        return params, velocity, report

    written = step(params)
    monkeypatch.setattr(backprop, "written_out", lambda arch, loss: False)
    generic = step(params)
    for got, expected in zip(written[:2], generic[:2]):
        for k in expected:
            torch.testing.assert_close(got[k], expected[k], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(written[2], generic[2], rtol=1e-5, atol=1e-6)
    assert not torch.equal(written[0]["fc0.weight"], params["fc0.weight"])  # the step moved the weights
