"""The CUDA path (skipped without a GPU): the batched engine on a GPU gives what it gives on the CPU (up to
float rounding), LASS keeps its box, the lease hands out real devices. benchmarks/gpu.py runs these first."""

import pytest
import torch

from memorization import config as S
from memorization.engine.data import build_noisy_dataset
from memorization.engine.devices import lease, use_tf32
from memorization.engine.lass import csr
from memorization.engine.models import Arch, forward, init_params
from memorization.engine.sgd import load_state
from memorization.engine.train import train_run
from memorization.results.rundir import checkpoint_path

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("arch", [{"arch": "mlp", "width": 64}, {"arch": "cnn", "momentum": 0.9}])
def test_training_on_the_gpu_matches_the_cpu(tmp_path, arch):
    spec = S.resolve({"dataset": "digits", "train_size": 200, "epochs": 2, "lr": 0.05, **arch}, seeds=[0, 1, 2])
    data = build_noisy_dataset(spec.data)
    use_tf32(False)  # the workflow's default (config key tf32): TF32 would change the numbers
    train_run(spec, data, tmp_path / "cpu", device="cpu", progress=False)
    train_run(spec, data, tmp_path / "gpu", device="cuda", progress=False)
    last = max(int(p.stem.split("_")[1]) for p in (tmp_path / "cpu" / "checkpoints").glob("*.pt"))
    a, b = load_state(checkpoint_path(tmp_path / "cpu", last)), load_state(checkpoint_path(tmp_path / "gpu", last))
    for name in a["params"]:
        torch.testing.assert_close(a["params"][name], b["params"][name], rtol=1e-3, atol=1e-4)


def test_lass_on_the_gpu_stays_in_its_box():
    spec = S.resolve({"dataset": "digits", "width": 32})
    arch = Arch.from_spec(spec, (1, 8, 8), 10)
    params = {k: v.cuda() for k, v in init_params(arch, [0])[0].items()}
    x = torch.rand(300, 1, 8, 8, device="cuda")
    out = csr(lambda t: forward(arch, params, {}, t, train=False)[0][0], x, r=8, alpha=6.67, beta=5.33, max_iter=20)
    assert 0 <= out["csr"] <= 1 and out["max_distance"] <= 8 * (1 + 1e-5)


def test_the_lease_hands_out_real_devices(tmp_path):
    with lease("auto", tmp_path) as device:
        assert device.startswith("cuda:") and torch.zeros(1, device=device).device.type == "cuda"


def _relative_error(result, exact):
    return ((result.double() - exact).norm() / exact.norm()).item()


def test_tf32_is_what_the_lease_says_for_products_and_convolutions(tmp_path):
    a, b = torch.randn(1024, 1024, device="cuda"), torch.randn(1024, 1024, device="cuda")
    images, kernels = torch.randn(8, 16, 32, 32, device="cuda"), torch.randn(32, 16, 3, 3, device="cuda")
    exact_product = a.double() @ b.double()
    exact_conv = torch.nn.functional.conv2d(images.double(), kernels.double())
    errors = {}
    for tf32 in (False, True):
        with lease("cuda", tmp_path, tf32=tf32):
            errors[tf32] = (
                _relative_error(a @ b, exact_product),
                _relative_error(torch.nn.functional.conv2d(images, kernels), exact_conv),
            )
    # float32 rounding is ~1e-7 per operation, TF32's 10-bit mantissas ~1e-4 (on a card with TF32 units:
    # Ampere or newer). Only the product must show TF32: cuDNN may still pick a float32 algorithm.
    assert max(errors[False]) < 1e-5 < errors[True][0], errors
