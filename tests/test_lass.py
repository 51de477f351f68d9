"""LASS on a model whose answer is known: for a linear two-class model the L∞ distance of x to the decision
boundary is |w·x + b| / ‖w‖₁, so LASS must find every point well inside r and can find none well outside."""

import pytest
import torch

from memorization.engine.lass import csr, lass, to_input_units


def linear_model(d=20, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(d, generator=gen, dtype=torch.float64)
    b = torch.tensor(0.1, dtype=torch.float64)

    def predict(x):
        margin = x.flatten(1) @ w + b
        return torch.stack([-margin / 2, margin / 2], dim=1)  # class 1 iff w·x + b > 0

    def distance(x):
        return (x.flatten(1) @ w + b).abs() / w.abs().sum()

    return predict, distance


@pytest.mark.parametrize("stop", ["example", "global"])
def test_points_inside_r_are_critical_and_points_beyond_are_not(stop):
    predict, distance = linear_model()
    x = torch.randn(2000, 20, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 0.05
    r = 0.01
    res = lass(predict, x, alpha=r / 4, beta=r / 40, r=r, max_iter=50, stop=stop, global_min_new=1)
    d = distance(x)
    inside, outside = d < 0.9 * r, d > 1.1 * r
    assert inside.sum() > 100 and outside.sum() > 100
    assert res.critical[inside].all()
    assert not res.critical[outside].any()
    assert (res.x_hat - x).abs().max() <= r + 1e-12  # never outside the box
    flipped = predict(res.x_hat).argmax(1) != predict(x).argmax(1)
    assert torch.equal(flipped[res.critical], torch.ones(int(res.critical.sum()), dtype=torch.bool))


def test_per_example_stop_freezes_points_at_their_first_flip():
    predict, distance = linear_model()
    x = torch.randn(300, 20, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 0.05
    res = lass(predict, x, alpha=0.001, beta=0.0, r=0.01, max_iter=30)
    crit = res.critical
    assert crit.any() and (~crit).any()
    assert (res.iterations[crit] >= 1).all() and (res.iterations[~crit] == 0).all()
    # no noise: the sign step moves every coordinate by alpha per iteration until the box; a frozen point
    # stopped at its flip, so it moved at most iterations * alpha
    moved = (res.x_hat - x).abs().amax(1)
    assert (moved[crit] <= res.iterations[crit] * 0.001 + 1e-12).all()


def test_lass_is_seeded():
    predict, _ = linear_model()
    x = torch.randn(200, 20, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 0.05
    a = lass(predict, x, alpha=0.002, beta=0.003, r=0.01, seed=5)
    b = lass(predict, x, alpha=0.002, beta=0.003, r=0.01, seed=5)
    assert torch.equal(a.x_hat, b.x_hat) and torch.equal(a.critical, b.critical)


def test_csr_converts_the_pixel_scale_and_reports_its_settings():
    predict, distance = linear_model()
    x = torch.randn(500, 20, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 0.05
    out = csr(predict, x, r=2.55, alpha=0.5, beta=0.05, pixel_range=1.0)  # r = 0.01 in input units
    expected = (distance(x) < 0.01).float().mean().item()
    assert out["csr"] == pytest.approx(expected, abs=0.01)
    assert out["n_points"] == 500 and out["max_distance"] <= 2.55 + 1e-9
    assert (out["lass_r"], out["lass_alpha"], out["lass_beta"], out["lass_stop"]) == (2.55, 0.5, 0.05, "example")
    assert to_input_units(0.3, 1.0) == pytest.approx(0.3 / 255)
    assert to_input_units(0.3, 4.0) == pytest.approx(1.2 / 255)
