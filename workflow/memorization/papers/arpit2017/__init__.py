"""Arpit et al. 2017, "A Closer Look at Memorization in Deep Networks" (ICML): its eleven figures and the
claims they test, in the paper's order (the scorecard's order). Importing this package registers them."""

TITLE = "Arpit et al. 2017"  # what the scorecard's summary calls this paper

from . import (  # noqa: F401 (each room registers its figure and claims when imported)
    fig01_difficulty,
    fig02_filters,
    fig03_gini,
    fig04_class_sensitivity,
    fig05_capacity,
    fig06_convergence,
    fig07_mlp_noise,
    fig08_cnn_noise,
    fig09_csr_random,
    fig10_regularizers,
    fig11_regularizer_curves,
)
