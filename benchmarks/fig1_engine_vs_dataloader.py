"""Fig. 1's training workload — 100 seeds x one epoch of the digits MLP on 1000 examples — trained by the
project's engine (all seeds batched, data resident, no DataLoader) and by a plain PyTorch loop (one seed
at a time, nn.Module + DataLoader + torch.optim.SGD), in one run. Prints both wall times and their ratio.

Both record the same things, as the training job does: at initialisation and after the epoch, loss and
accuracy on the training and validation splits and per-example correctness on the training split. The
engine's time also includes writing its checkpoint, resume-state and evaluation files.

    python benchmarks/fig1_engine_vs_dataloader.py [--seeds 100] [--width 256] [--device cpu]
"""

import argparse
import tempfile
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from memorization import spec as S
from memorization.data import build_noisy_dataset
from memorization.train import train_run


@torch.no_grad()
def record(model, x, y, x_val, y_val):
    out = {}
    for split, xs, ys in (("train", x, y), ("val", x_val, y_val)):
        logits = model(xs)
        correct = logits.argmax(1) == ys
        out[split] = (nn.functional.cross_entropy(logits, ys).item(), correct.float().mean().item(), correct.cpu())
    return out


def plain_loop(data, seeds, width, lr, batch_size, device):
    """What one would write by hand: a fresh model, loader and optimiser per seed."""
    x = torch.as_tensor(data.x_train).flatten(1)
    y = torch.as_tensor(data.y_train)
    x_val = torch.as_tensor(data.x_val).flatten(1).to(device)
    y_val = torch.as_tensor(data.y_val).to(device)
    accuracies = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = nn.Sequential(
            nn.Linear(x.shape[1], width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10)
        ).to(device)
        for m in model:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        record(model, x.to(device), y.to(device), x_val, y_val)
        loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
        accuracies.append(record(model, x.to(device), y.to(device), x_val, y_val)["train"][1])
    return float(np.mean(accuracies))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = S.resolve({"dataset": "digits", "train_size": 1000, "width": args.width, "epochs": 1, "lr": 0.01})
    spec["seeds"] = list(range(args.seeds))
    data = build_noisy_dataset(S.dataset_spec(spec))

    with tempfile.TemporaryDirectory() as run_dir:  # warm-up of both paths (allocator, kernels)
        train_run({**spec, "seeds": [0]}, data, run_dir, device=args.device, progress=False)
    plain_loop(data, [0], args.width, spec["lr"], spec["batch_size"], args.device)

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        train_run(spec, data, run_dir, device=args.device, progress=False)
        with np.load(f"{run_dir}/evals/step_{32:09d}.npz") as ev:
            engine_acc = float(ev["train_acc"].mean())
    engine = time.perf_counter() - t0

    t0 = time.perf_counter()
    plain_acc = plain_loop(data, spec["seeds"], args.width, spec["lr"], spec["batch_size"], args.device)
    plain = time.perf_counter() - t0

    print(
        f"Fig. 1 workload: {args.seeds} seeds x 1 epoch, digits MLP 64-{args.width}-{args.width}-10, "
        f"batch 32, on {args.device} ({args.threads} threads)"
    )
    print(f"  engine (seeds batched)        {engine:7.2f} s   mean train acc {engine_acc:.3f}")
    print(f"  plain DataLoader loop         {plain:7.2f} s   mean train acc {plain_acc:.3f}")
    print(f"  ratio plain / engine          {plain / engine:7.1f}x")


if __name__ == "__main__":
    main()
