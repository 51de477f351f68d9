"""Figures and claims of the papers the workflow reproduces: a package per paper, a room (one file) per figure.

A room holds everything about one figure: its declaration (tables, caption), its statistic computed once
from the tables, its drawing and findings printed from that statistic, and its claims evaluated on that same
statistic. Importing a paper's package registers its figures and claims (memorization.catalog).
"""

# The built-in papers, in the scorecard's order: Arpit et al.'s figures, then those of the per-example scores
# that followed. Importing this package registers them all; the workflow and the command line import it.
from . import arpit2017, scores  # noqa: E402, F401
