"""One declared type per column, whatever the config; undeclared columns are refused."""

import pandas as pd
import pyarrow.parquet as pq
import pytest

from memorization import catalog as registry
from memorization.results.tables import arrow_schema, conform, read_provenance, write_table


def csr_rows(r):
    identity = {
        "experiment": "e",
        "run_id": "abc",
        "config_id": "abc",
        "seed": 0,
        "dataset": "digits",
        "arch": "cnn",
        "width": None,
        "train_size": 10,
        "input_noise": "none",
        "input_noise_fraction": 0.0,
        "label_noise": "none",
        "label_noise_fraction": 0.0,
        "regularizer": "none",
        "reg_strength": 0.0,
    }
    metric = {
        "epoch": 1,
        "step": 3,
        "split": "val",
        "csr": 0.5,
        "n_points": 2,
        "n_critical": 1,
        "mean_iterations": 2.0,
        "max_distance": 0.3,
        "lass_r": r,
        "lass_alpha": 1,
        "lass_beta": 0,
        "lass_max_iter": 5,
        "lass_stop": "example",
    }
    return pd.DataFrame([{**identity, **metric}])


def test_a_config_literal_does_not_change_a_column_type(tmp_path):
    for name, r in (("int", 8), ("float", 0.3)):
        write_table(csr_rows(r), tmp_path / f"{name}.parquet", table="csr", specs={})
    schemas = [pq.read_schema(tmp_path / f"{name}.parquet").remove_metadata() for name in ("int", "float")]
    assert schemas[0] == schemas[1] == arrow_schema("csr")
    assert str(schemas[0].field("lass_r").type) == "double" and str(schemas[0].field("lass_stop").type) == "string"
    assert "memorization.run_specs" in read_provenance(tmp_path / "int.parquet")


def test_undeclared_and_missing_columns_are_refused():
    with pytest.raises(ValueError, match=r"columns \['surprise'\] that the catalog does not declare"):
        conform(csr_rows(1).assign(surprise=1), "csr")
    with pytest.raises(ValueError, match=r"lacks required columns \['lass_stop'\]"):
        conform(csr_rows(1).drop(columns="lass_stop"), "csr")


def test_every_registered_column_has_a_parquet_type():
    for name in registry.TABLES:
        assert len(arrow_schema(name)) == len(registry.table(name).dtypes())
