# make run   — set up .venv if needed, then run the whole workflow on config.yaml (the digits default)
# make test  — set up .venv if needed, then run the test suite
# make bench — the benchmarks in benchmarks/ (ratios against baselines measured in the same run)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= all

.PHONY: run test bench dry-run clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/snakemake --cores $(CORES)

test: $(VENV)/.installed
	$(BIN)/python -m pytest

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/fig1_engine_vs_dataloader.py

dry-run: $(VENV)/.installed
	$(BIN)/snakemake -n --quiet rules

clean:
	rm -rf results .snakemake
