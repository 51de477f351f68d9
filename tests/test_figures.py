"""Figure details that a reader sees: findings off the image by default, bands inside the possible range,
plain tick labels, mathematical symbols, one style."""

import matplotlib.pyplot as plt
import pandas as pd

from memorization.report import figures, plotting
from memorization.report.stats import mean_band


def gini_table():
    rows = []
    for cond, noise in (("real", "none"), ("random", "uniform")):
        for step in (50, 100, 1000):
            rows.append(
                {
                    "run_id": cond,
                    "seed": 0,
                    "step": step,
                    "gini": 0.5 if cond == "real" else 0.3,
                    "input_noise": noise,
                    "input_noise_fraction": 1.0 if noise != "none" else 0.0,
                    "label_noise": "none",
                    "label_noise_fraction": 0.0,
                }
            )
    return pd.DataFrame(rows)


def test_findings_are_not_stamped_on_the_image_unless_asked(tmp_path):
    fig, findings = figures.build("fig03_gini", {"gini": gini_table()})
    assert findings and not any("This run" in t.get_text() for t in fig.texts)  # not in the figure itself
    plotting.save(fig, tmp_path / "plain")
    fig, findings = figures.build("fig03_gini", {"gini": gini_table()})
    plotting.save(fig, tmp_path / "stamped", findings, stamp=True)
    heights = [plt.imread(tmp_path / f"{name}.png").shape[0] for name in ("plain", "stamped")]
    assert heights[1] > heights[0]  # the stamped one has the findings under the plot


def test_log_axes_read_as_plain_numbers_and_symbols_are_typeset():
    fig, _ = figures.build("fig03_gini", {"gini": gini_table()})
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [ax.xaxis.get_major_formatter()(v) for v in (50, 100, 1000)] == ["50", "100", "1000"]
    assert ax.get_ylabel() == r"Gini coefficient of $\bar{g}_x$"
    assert plt.rcParams["axes.spines.top"] is True  # the figure style does not leak into the caller
    plt.close(fig)


def test_bands_of_ratios_stay_inside_zero_and_one():
    frame = pd.DataFrame({"condition": "real data", "epoch": [0, 0, 1, 1], "csr": [0.0, 0.3, 0.9, 1.0]})
    fig, ax = plt.subplots()
    plotting.curves(ax, mean_band(frame, "epoch", "csr"), "epoch", bounds=(0, 1))
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() >= 0.0 and band.max() <= 1.0
    plotting.curves(ax, mean_band(frame, "epoch", "csr"), "epoch")  # unclipped, the same data's band leaves [0, 1]
    band = ax.collections[1].get_paths()[0].vertices[:, 1]
    assert band.min() < 0.0 and band.max() > 1.0
    plt.close(fig)


def test_fig10_gives_each_regulariser_its_own_panel():
    from .test_claims import regulariser_rows

    settings = {("none", 0.0, None): 0.0, ("dropout", 0.3, None): 0.3, ("dropout", 0.6, None): 0.6}
    settings |= {("weight_decay", 0.001, None): 0.001, ("weight_decay", 0.01, None): 0.01}
    rows = regulariser_rows({k: ([0.9 - s] * 2, [0.98 - s / 10] * 2) for k, s in settings.items()}).assign(
        val_loss=1.0, train_size=10, dataset="digits", arch="mlp", width=8, experiment="e"
    )
    fig, findings = figures.build("fig10_regularizers", {"training": rows})
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["dropout", "weight decay", "at matched cuts (higher is better)"]
    assert findings[1].startswith("dropout: 0.3: -0.300 / -0.030")
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == ["0.3", "0.6"]
    plt.close(fig)
