"""The per-example memorization and difficulty scores of the papers that followed Arpit et al. (Toneva et al.
2019, Swayamdipta et al. 2020, Pleiss et al. 2020, Paul et al. 2021, Agarwal et al. 2022, Feldman & Zhang
2020, Jiang et al. 2021, Northcutt et al. 2021; docs/science.md §10), computed side by side on the same runs:
two figures and the claims of those papers they test. Importing this package registers them."""

TITLE = "the per-example scores after it"  # what the scorecard's summary calls these papers

from . import heldout, score_agreement  # noqa: F401 (each room registers its figure and claims when imported)
