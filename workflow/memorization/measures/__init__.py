"""The measures layer: what is computed from a finished run's files, one function per metric table
(`metrics`), the loss-sensitivity replay (`sensitivity`), the per-example scores (`scores`) and the Gini
summary (`gini`)."""
