"""Reproduce and extend Arpit et al. 2017, "A Closer Look at Memorization in Deep Networks", as a Snakemake
workflow over this library. The package is layered; each layer imports only the layers below it
(docs/design.md):

    pipeline   jobs, code fingerprints, the cost plan, the command line, interrupts
    papers     the figure rooms: each figure's statistic, drawing, findings and claims
    report     statistics from tables, plotting, figures, the scorecard
    measures   the metric tables of a finished run: sensitivity, CSR, per-example scores, Gini
    engine     data, models, SGD, timeline, LASS, training, devices, memory
    results    files, run folders, the table contract
    config     layering, validation, typed run specs
    catalog    what exists: data sets, tables, scores, figures, claims
"""
