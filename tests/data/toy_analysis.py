"""A toy analysis, registered from outside the package as a user would (config key `analyses:`): a metric
(the norm of each seed's first-layer weights at every checkpoint, times a setting), its table, its figure."""

import pandas as pd

from memorization.registry import Figure, Table, columns, register_figure, register_table


def weight_norm(spec, data, run_dir, settings, device="cpu"):
    from memorization.train import checkpoint_path, completed_plan, load_state

    plan = completed_plan(spec, len(data.y_train), run_dir)
    rows = []
    for step in plan.checkpoint_steps:
        weights = load_state(checkpoint_path(run_dir, step))["params"]["fc0.weight"]
        for pos, seed in enumerate(spec["seeds"]):
            rows.append({"seed": seed, "step": step, "norm": settings["scale"] * float(weights[pos].norm())})
    return pd.DataFrame(rows)


def fig_weight_norm(table):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    for seed, g in table.groupby("seed"):
        ax.plot(g["step"], g["norm"], label=f"seed {seed}")
    ax.set_xlabel("step")
    ax.set_ylabel("first-layer weight norm")
    return fig, [f"largest norm {table['norm'].max():.4f}"]


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
register_figure(Figure("fig_weight_norm", ("weight_norm",), fig_weight_norm, "**Toy.** First-layer weight norm."))
