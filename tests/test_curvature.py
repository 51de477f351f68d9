"""The batch loss's curvature along many directions (memorization.curvature) and the transpose of the SGD step
(sgd.sgd_step_vjp_): the MLP's written-out products against torch.func, torch.func against the Hessian itself."""

import pytest
import torch

from memorization.engine import curvature
from memorization.engine.models import Arch, example_losses, forward, init_params
from memorization.engine.regularizers import Regularizer, layer_noise
from memorization.engine.sgd import decays, sgd_step, sgd_step_vjp_

MLP = Arch("mlp", (1, 4, 4), 7, hidden=(6, 5))
CNN = Arch("cnn", (1, 8, 8), 5, channels=3, dense=(6,), crop=0)


def setup(arch, seeds=2, batch=4, rows=3):
    gen = torch.Generator().manual_seed(1)
    params, buffers = init_params(arch, list(range(seeds)))
    params = {k: (v + 0.3 * torch.randn(v.shape, generator=gen)).double() for k, v in params.items()}
    buffers = {k: v.double() for k, v in buffers.items()}
    x = torch.rand(seeds, batch, *arch.in_shape, generator=gen, dtype=torch.float64)
    y = torch.randint(arch.n_classes, (seeds, batch), generator=gen)
    directions = {
        k: torch.randn(seeds, rows, *v.shape[1:], generator=gen, dtype=torch.float64) for k, v in params.items()
    }
    return params, buffers, x, y, directions


def products(which, arch, params, buffers, x, y, loss, reg, directions):
    noise = layer_noise(reg, [0, 1], 3, "cpu")
    out = {k: torch.zeros_like(v) for k, v in directions.items()}
    hx = which(out, arch, params, buffers, x, y, loss, noise, directions)
    return out, hx


@pytest.mark.parametrize("loss", ["cross_entropy", "smoothed_log"])
@pytest.mark.parametrize("reg", [Regularizer(), Regularizer("dropout", 0.4), Regularizer("input_dropout", 0.3)])
def test_the_mlps_written_out_products_equal_torch_func(loss, reg, monkeypatch):
    monkeypatch.setattr(curvature, "ROW_BLOCK", 2)  # 3 rows: a full block and a partial one
    args = (MLP, *setup(MLP)[:4], loss, reg, setup(MLP)[4])
    written, written_x = products(curvature._mlp_hvp_, *args)
    generic, generic_x = products(curvature._autograd_hvp_, *args)
    assert float(generic_x.abs().max()) > 1e-3  # the check can fail
    torch.testing.assert_close(written_x, generic_x, rtol=1e-10, atol=1e-12)
    for k in generic:
        torch.testing.assert_close(written[k], generic[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("arch", [MLP, CNN])
def test_the_products_are_the_hessian_of_the_training_steps_loss(arch):
    """Row r of H·a against the full Hessian of Σ_s mean_b ℓ over (parameters, inputs), built by torch.autograd."""
    params, buffers, x, y, directions = setup(arch, rows=2)
    names = list(params)
    sizes = [params[k].numel() for k in names]

    def loss_of(flat):
        parts = torch.split(flat[: sum(sizes)], sizes)
        p = {k: t.view_as(params[k]) for k, t in zip(names, parts)}
        logits, _ = forward(arch, p, buffers, flat[sum(sizes) :].view_as(x), train=True)
        return example_losses(logits, y, "smoothed_log").mean(1).sum()

    flat = torch.cat([params[k].flatten() for k in names] + [x.flatten()])
    hessian = torch.autograd.functional.hessian(loss_of, flat)
    out, hx = products(curvature.add_loss_hvp_, arch, params, buffers, x, y, "smoothed_log", Regularizer(), directions)
    for r in range(2):
        a = torch.cat([directions[k][:, r].flatten() for k in names] + [torch.zeros(x.numel(), dtype=x.dtype)])
        expected = hessian @ a
        got = torch.cat([out[k][:, r].flatten() for k in names] + [hx[:, r].flatten()])
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-11)


def test_the_sgd_steps_transpose_is_its_vector_jacobian_product():
    """sgd_step_vjp_ against torch.func.vjp of sgd_step composed with a gradient that depends on the weights
    (g = M·w, so (∂g/∂w)ᵀa = Mᵀa), with momentum and weight decay on the kernels only."""
    gen = torch.Generator().manual_seed(0)
    shapes = {"fc0.weight": (3, 2), "fc0.bias": (2,)}
    w = {k: torch.randn(s, generator=gen, dtype=torch.float64) for k, s in shapes.items()}
    v = {k: torch.randn(s, generator=gen, dtype=torch.float64) for k, s in shapes.items()}
    M = {k: torch.randn(t.numel(), t.numel(), generator=gen, dtype=torch.float64) for k, t in w.items()}
    settings = {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}

    def step(w, v):
        g = {k: (M[k] @ w[k].flatten()).view_as(w[k]) for k in w}
        return sgd_step(w, g, v, **settings)

    rows = 4
    lam = [{k: torch.randn(rows, *s, generator=gen, dtype=torch.float64) for k, s in shapes.items()} for _ in "wv"]
    _, pullback = torch.func.vjp(step, w, v)
    expected_w, expected_v = torch.func.vmap(pullback)(tuple(lam))
    lam_w, lam_v = ({k: t.clone() for k, t in part.items()} for part in lam)

    def through_gradient(a):
        for k in a:
            lam_w[k] += (a[k].flatten(1) @ M[k]).view_as(a[k])

    sgd_step_vjp_(lam_w, lam_v, through_gradient, **settings)
    assert decays("fc0.weight") and not decays("fc0.bias")
    for k in shapes:
        torch.testing.assert_close(lam_w[k], expected_w[k])
        torch.testing.assert_close(lam_v[k], expected_v[k])
