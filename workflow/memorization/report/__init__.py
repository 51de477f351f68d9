"""The report layer: statistics computed from the tables, the common style of the figures, drawing a figure
and its findings from its tables, and the reproduction scorecard."""
