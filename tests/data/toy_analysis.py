"""A toy analysis, registered from outside the package as a user would (config key `analyses:`): a data set,
a metric (the norm of each seed's first-layer weights at every checkpoint, times a setting) and its table,
and a figure with its statistic, findings and a claim: one file."""

import pandas as pd

from memorization.catalog import (
    Claim,
    Dataset,
    Figure,
    Table,
    Verdict,
    columns,
    register_claims,
    register_dataset,
    register_figure,
    register_table,
)


def load_small_digits(root, download):
    """The first 200 training and 100 validation digits of the bundled set."""
    from memorization.engine.data import Split, load_digits

    train, val, n_classes = load_digits(root, download)
    return Split(train.x[:200], train.y[:200]), Split(val.x[:100], val.y[:100]), n_classes


register_dataset(
    Dataset(
        "small_digits",
        load_small_digits,
        200,
        "The first 200 / 100 of scikit-learn's digits.",
        shape=(1, 8, 8),
        n_val=100,
        job_minutes=10,
    )
)


def weight_norm(spec, data, run_dir, settings, device="cpu"):
    from memorization.engine.sgd import load_state
    from memorization.engine.timeline import completed_timeline
    from memorization.results.rundir import checkpoint_path

    timeline = completed_timeline(spec, len(data.y_train), run_dir)
    rows = []
    for step in timeline.checkpoint_steps:
        weights = load_state(checkpoint_path(run_dir, step))["params"]["fc0.weight"]
        for pos, seed in enumerate(spec.seeds):
            rows.append({"seed": seed, "step": step, "norm": settings["scale"] * float(weights[pos].norm())})
    return pd.DataFrame(rows)


register_table(
    Table(
        "weight_norm",
        "metric",
        columns(("step", "int64", "checkpoint step"), ("norm", "float64", "scale x ||W_1||")),
        "run, seed, checkpoint",
        "Norm of the first-layer weights.",
        compute=weight_norm,
        settings={"scale": {"type": "number", "exclusiveMinimum": 0, "default": 1.0}},
    )
)


def norms(table):
    """The statistic: step x seed, the first-layer weight norm."""
    return table.pivot_table(index="step", columns="seed", values="norm")


def findings(n):
    return [f"largest norm {n.max().max():.4f}", f"last / first: {' '.join(f'{r:.4f}' for r in growth(n))}"]


def draw(n):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    for seed in n.columns:
        ax.plot(n.index, n[seed], label=f"seed {seed}")
    ax.set_xlabel("step")
    ax.set_ylabel("first-layer weight norm")
    return fig


def growth(n):
    return n.iloc[-1] / n.iloc[0]


def norm_grows(n):
    g = growth(n)
    return Verdict(f"last / first: {' '.join(f'{r:.4f}' for r in g)}", bool((g > 1).all()))


register_figure(Figure("fig_weight_norm", ("weight_norm",), "**Toy.** First-layer weight norm.", norms, draw, findings))
register_claims(
    Claim(
        "toy_norm_grows",
        "fig_weight_norm",
        "Training grows the first-layer weights.",
        "first-layer weight norm at the last checkpoint / at the first, per seed",
        "> 1 in every seed",
        norm_grows,
    )
)
