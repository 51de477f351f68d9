"""The engine layer: data sets and their noise, the models as pure functions of stacked per-seed parameters,
their products, backpropagation and curvature, regularisers, LASS, the timeline of batches, the SGD step and
training, devices, and what a job holds in memory. `architecture` and `memory` import no torch: Snakemake
sizes jobs with them."""
