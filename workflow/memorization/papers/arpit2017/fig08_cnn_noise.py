"""Fig. 8: the CNN under partial input noise and label noise (the paper's §4.1): Fig. 7's sweep, statistic
and claims, on the CNN."""

from __future__ import annotations

from .fig07_mlp_noise import register_sweep

register_sweep(
    "fig08_cnn_noise",
    "CNN, partial noise: accuracy and critical sample ratio (Arpit et al. Fig. 8)",
    """\
        **Fig. 8, the CNN under partial noise.** As Fig. 7, with the CNN. *Paper (§4.1):* the same conclusions
        as Fig. 7: higher CSR and lower validation accuracy with more noise; for label noise an early
        validation peak, then a decline and a CSR surge while the noise is memorised.""",
    "CNN",
    like="fig07",
)
