"""The catalog: what exists (data sets, tables, per-example scores, figures, claims) and the registries that
hold it; the bottom layer, importing nothing else of the package (docs/design.md). Importing it registers the
built-in data sets and tables; the built-in figures and claims register when memorization.papers is imported.
"""

from . import builtin_datasets, builtin_tables  # noqa: F401 (each registers its entries)
from .builtin_tables import SCORES, SENSITIVITY_SETTINGS
from .entries import (
    ARROW_TYPES,
    CLAIMS,
    DATA_CONDITIONS,
    DATASETS,
    FIGURES,
    IDENTITY,
    REGULARIZER_AXES,
    REGULARIZERS,
    TABLES,
    Claim,
    Column,
    Dataset,
    Figure,
    Score,
    Table,
    Verdict,
    claims_of,
    columns,
    figure,
    implementation,
    load_analyses,
    numbers,
    register_claim,
    register_claims,
    register_dataset,
    register_figure,
    register_table,
    table,
    tables_of_stage,
)

__all__ = [
    "ARROW_TYPES", "CLAIMS", "DATA_CONDITIONS", "DATASETS", "FIGURES", "IDENTITY", "REGULARIZER_AXES", "REGULARIZERS",
    "SCORES",
    "SENSITIVITY_SETTINGS", "TABLES", "Claim", "Column", "Dataset", "Figure", "Score", "Table", "Verdict", "claims_of",
    "columns", "figure", "implementation", "load_analyses", "numbers", "register_claim", "register_claims",
    "register_dataset", "register_figure", "register_table", "table", "tables_of_stage",
]  # fmt: skip
