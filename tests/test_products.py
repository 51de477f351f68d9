"""The engine's batched products (memorization.products) on both kernels, torch's and oneDNN's
(memorization.onednn): the same numbers as their definitions, oneDNN's the same to the bit whatever the
thread count and grouping, and each product on the kernel it should run on."""

import os
import subprocess
import sys
from contextlib import nullcontext

import pytest
import torch

from memorization.engine import onednn, products
from memorization.engine.backprop import OuterProduct

needs_onednn = pytest.mark.skipif(not onednn.available(), reason="oneDNN is not installed here (x86-64 Linux only)")
KERNELS = ["torch", pytest.param("onednn", marks=needs_onednn)]


def kernel(name: str):
    return onednn.turned_off() if name == "torch" else nullcontext()


def operands(out_features: int, dtype, S=4, B=128, n_in=256, seed=4):
    gen = torch.Generator().manual_seed(seed)

    def draw(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype)

    return draw(S, B, n_in), draw(S, n_in, out_features), draw(S, out_features), draw(S, B, out_features)


@pytest.mark.parametrize("kind", KERNELS)
@pytest.mark.parametrize("out_features", [10, 16, 300], ids=lambda n: f"{n}-wide")
def test_each_product_is_its_definition_on_either_kernel(kind, out_features):
    # torch in float64 to the last bits; oneDNN computes float32 (as the engine trains), so float32 in and
    # a float32 product's rounding against the float64 definition. Sizes above products.ONEDNN_MIN_MACS.
    dtype, tol = (torch.float64, 1e-12) if kind == "torch" else (torch.float32, 2e-5)
    h, w, bias, delta = operands(out_features, dtype)
    H, Wd, b, D = (t.double() for t in (h, w, bias, delta))
    calls = count_onednn_calls()
    with kernel(kind), calls:
        z = products.dense(h, w, bias)
        hidden = products.dense(h, w, bias, relu=True)
        shared = products.dense(h[:1], w, bias)  # one input broadcast over the seeds
        back = products.through_weights(delta, w)
        out = w.clone()
        OuterProduct(h, delta).add_to_(out, beta=0.9, alpha=-0.1)  # momentum's form
        plain = w.clone()
        products.add_outer_(plain, h, delta, alpha=-0.1)  # plain SGD's
    assert z.is_contiguous() and z.dtype == dtype
    scale = 1 + torch.einsum("sbi,sio->sbo", H, Wd).abs().max()
    outer = torch.einsum("sbi,sbo->sio", H, D)
    for got, expected in [
        (z, torch.einsum("sbi,sio->sbo", H, Wd) + b[:, None]),
        (hidden, (torch.einsum("sbi,sio->sbo", H, Wd) + b[:, None]).clamp_min(0)),
        (shared, torch.einsum("bi,sio->sbo", H[0], Wd) + b[:, None]),
        (back, torch.einsum("sbo,sio->sbi", D, Wd)),
        (out, 0.9 * Wd - 0.1 * outer),
        (plain, Wd - 0.1 * outer),
    ]:
        torch.testing.assert_close(got.double(), expected, rtol=0, atol=tol * scale)
    assert (calls.n > 0) == (kind == "onednn")  # float64 never reaches oneDNN; float32 of this size does


@needs_onednn
def test_onednn_products_are_the_same_to_the_bit_for_any_thread_count_grouping_and_rerun():
    h, w, bias, delta = operands(256, torch.float32, S=8, B=32, n_in=256, seed=7)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            for groups in ([slice(0, 8)], [slice(0, 3), slice(3, 8)], [slice(s, s + 1) for s in range(8)]):
                z = torch.cat([products.dense(h[g], w[g], bias[g]) for g in groups])
                back = torch.cat([products.through_weights(delta[g], w[g]) for g in groups])
                upd = w.clone()
                for g in groups:
                    products.add_outer_(upd[g], h[g], delta[g], beta=0.9, alpha=-0.01)
                results.append((z, back, upd))
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other))


@needs_onednn
def test_products_that_need_a_gradient_or_are_too_small_run_in_torch_and_differentiate():
    h, w, bias, _ = operands(64, torch.float32)
    calls = count_onednn_calls()
    with calls:
        leaf = w.clone().requires_grad_(True)
        products.dense(h, leaf, bias).square().sum().backward()  # autograd: torch's product
        by_vmap = torch.func.vmap(lambda a, b, c: products.dense(a[None], b[None], c[None])[0])(h, w, bias)
        small = products.dense(h[:1, :2, :8], w[:1, :8, :8], bias[:1, :8])  # below ONEDNN_MIN_MACS
        assert calls.n == 0
        with torch.no_grad():
            products.dense(h, w, bias)  # the same product without a gradient: oneDNN's
        assert calls.n == 1
    expected = 2 * torch.einsum("sbi,sbo->sio", h, torch.einsum("sbi,sio->sbo", h, w) + bias[:, None])
    torch.testing.assert_close(leaf.grad, expected, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(by_vmap, torch.baddbmm(bias[:, None], h, w), rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(small, torch.baddbmm(bias[:1, None, :8], h[:1, :2, :8], w[:1, :8, :8]))


@needs_onednn
def test_the_engines_products_run_in_onednn_here_and_in_torch_when_it_is_turned_off():
    from memorization.engine.architecture import Arch
    from memorization.engine.sgd import initial_state, train_step

    arch = Arch(kind="mlp", in_shape=(1, 8, 8), n_classes=10, hidden=(256, 256))
    seeds = list(range(4))
    params, buffers, velocity = initial_state(arch, seeds, "cpu")
    x, y = torch.rand(4, 32, 1, 8, 8), torch.randint(10, (4, 32))
    for off, expected in ((False, True), (True, False)):
        calls = count_onednn_calls()
        with calls, onednn.turned_off() if off else nullcontext():
            train_step(arch, params, buffers, velocity, x, y, lr=0.01, momentum=0.9, groups=[slice(0, 4)])
        assert (calls.n >= 5) == expected  # 3 forward, 1 backward through the hidden weights, 3 updates
    env = {**os.environ, "MEMORIZATION_MATMUL": "torch"}
    code = "from memorization.engine import onednn; print(onednn.available())"
    answer = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout
    assert answer.strip() == "False"


def test_a_onednn_library_that_does_not_load_leaves_every_product_to_torch(monkeypatch, tmp_path, capsys):
    broken = tmp_path / "libdnnl.so.3"
    broken.write_bytes(b"not a shared library")
    monkeypatch.setattr(onednn, "library_path", lambda: str(broken))
    monkeypatch.setattr(onednn, "_state", {})
    h, w, bias, _ = operands(64, torch.float32)
    torch.testing.assert_close(products.dense(h, w, bias), torch.baddbmm(bias[:, None], h, w))
    assert not onednn.available() and "every product runs in torch" in capsys.readouterr().err


class count_onednn_calls:
    """Counts the products that oneDNN computed within the block."""

    def __enter__(self):
        self.n, self.original = 0, onednn.matmul

        def counted(*args, **kwargs):
            out = self.original(*args, **kwargs)
            self.n += out is not None
            return out

        onednn.matmul = counted
        return self

    def __exit__(self, *exc):
        onednn.matmul = self.original
