"""LASS as the CSR metric runs it (all points batched, finished points frozen and compacted away) against a
one-example-at-a-time loop calling the same function on each point, with the same settings on the same
points, in one run. Prints both wall times, both CSRs and the ratio.

The model: a digits MLP (64-256-256-10) trained for 20 epochs by the project's engine, 1 seed.

    python benchmarks/lass_batched_vs_loop.py [--points 500] [--r 8] [--device cpu]
"""

import argparse
import tempfile
import time

import torch

from memorization import config as S
from memorization.engine.data import build_noisy_dataset
from memorization.engine.lass import csr
from memorization.engine.models import Arch, forward
from memorization.engine.sgd import load_state
from memorization.engine.train import train_run
from memorization.results.rundir import checkpoint_path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=500)
    ap.add_argument("--r", type=float, default=8.0, help="0-255 scale; alpha = r/4, beta = r/20")
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = S.resolve({"dataset": "digits", "width": 256, "epochs": 20, "lr": 0.05}, seeds=[0])
    data = build_noisy_dataset(spec.data)
    with tempfile.TemporaryDirectory() as run_dir:
        train_run(spec, data, run_dir, device=args.device, progress=False)
        state = load_state(checkpoint_path(run_dir, 20 * 41), args.device)
    arch = Arch.from_spec(spec, data.x_train.shape[1:], data.n_classes)

    def predict(x):
        return forward(arch, state["params"], state["buffers"], x, train=False)[0][0]

    x = torch.as_tensor(data.x_val[: args.points], device=args.device)
    settings = {"r": args.r, "alpha": args.r / 4, "beta": args.r / 20, "max_iter": args.max_iter, "seed": 0}
    csr(predict, x[:10], **settings)  # warm-up

    t0 = time.perf_counter()
    batched = csr(predict, x, **settings)
    t_batched = time.perf_counter() - t0

    t0 = time.perf_counter()
    found = sum(csr(predict, x[i : i + 1], **settings)["n_critical"] for i in range(len(x)))
    t_loop = time.perf_counter() - t0

    print(
        f"LASS on {len(x)} digits validation points, r={args.r:g} alpha={args.r / 4:g} beta={args.r / 20:g} "
        f"(0-255 scale), <= {args.max_iter} iterations, per-example stop, on {args.device}"
    )
    print(f"  batched, active set compacted   {t_batched:7.2f} s   CSR {batched['csr']:.3f}")
    print(f"  one example at a time           {t_loop:7.2f} s   CSR {found / len(x):.3f}")
    print(f"  ratio loop / batched            {t_loop / t_batched:7.1f}x")


if __name__ == "__main__":
    main()
