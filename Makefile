# make run   — set up .venv if needed, then run the whole workflow on config.yaml (the digits default)
# make test  — set up .venv if needed, then the linters (ruff, snakefmt, snakemake --lint) and the tests
# make lint  — the linters alone
# make lock  — requirements.lock, the exact versions every install uses, resolved afresh
# make readme-scorecard — after make run: the README's results section becomes this run's scorecard
# make fuzz  — the config fuzz tests (values after parsing; the file's bytes) with FUZZ_EXAMPLES examples each
#              (5,000; the suite tries 300), counts printed
# make browser — Debian's chromium and chromium-driver (as root), which the browser tests drive through Selenium
# make screenshots — the browser tests again, their screenshots kept in docs/images (README, docs/board.md)
# make bench — the benchmarks in benchmarks/ (ratios against baselines measured in the same run)
# make bench-docs — the same, their tables written into docs/performance.md
# make plan  — the predicted device and wall time of a config (CONFIG=..., DEVICES=...)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= all

.PHONY: run test lint format fuzz bench bench-docs plan dry-run readme-scorecard readme-plan lock clean browser screenshots

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/snakemake --cores $(CORES)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint --workflow-profile none --cores 1

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/snakefmt .

# Two workers, each module's tests in one (its completed workflow fixtures are built once): the suite is
# mostly job processes starting, which two workers overlap on a two-core machine.
TEST_WORKERS ?= 2
test: lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

browser:
	apt-get install -y --no-install-recommends chromium chromium-driver

screenshots: $(VENV)/.installed
	MEMORIZATION_SCREENSHOTS=docs/images $(BIN)/python -m pytest -q tests/test_board.py -k browser

# A random sample each time (the suite's 300 are fixed), under a 12 GB address-space cap: a mutation that
# would exhaust memory is a MemoryError that Hypothesis reports and shrinks, not the kernel killing the run.
FUZZ_EXAMPLES ?= 5000
fuzz: $(VENV)/.installed
	ulimit -v 12000000 && FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q tests/test_fuzz.py -k every

# After `make run`: the README's results section becomes this run's scorecard.
readme-scorecard: $(VENV)/.installed
	$(BIN)/memorization claims results/config/tables --readme README.md --page docs/scorecard.md > /dev/null
	$(BIN)/memorization plan --time-of . --readme README.md > /dev/null

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/fig1_engine_vs_dataloader.py --repeat 3
	$(BIN)/python benchmarks/cnn_stacked_vs_loop.py
	$(BIN)/python benchmarks/scores_training.py
	$(BIN)/python benchmarks/lass_batched_vs_loop.py
	$(BIN)/python benchmarks/replay_memory.py --quick
	$(BIN)/python benchmarks/event_files.py
	$(BIN)/python benchmarks/gpu.py

# The same, writing their tables into docs/performance.md (the replay's full set takes about 15 minutes).
bench-docs: $(VENV)/.installed
	$(BIN)/python benchmarks/fig1_engine_vs_dataloader.py --repeat 3 --docs docs/performance.md
	$(BIN)/python benchmarks/cnn_stacked_vs_loop.py --docs docs/performance.md
	$(BIN)/python benchmarks/scores_training.py --docs docs/performance.md
	$(BIN)/python benchmarks/replay_memory.py --docs docs/performance.md
	$(BIN)/python benchmarks/event_files.py --docs docs/performance.md

# The predicted cost of a config before running it (CONFIG=configs/paper.yaml DEVICES=2 make plan).
CONFIG  ?= config.yaml
DEVICES ?= 2
plan: $(VENV)/.installed
	$(BIN)/memorization plan $(CONFIG) --devices $(DEVICES)

# The README's plan of configs/paper.yaml on this machine (calibrates the paper's model shapes: minutes).
readme-plan: $(VENV)/.installed
	$(BIN)/memorization plan configs/paper.yaml --devices 2 --readme README.md > /dev/null

dry-run: $(VENV)/.installed
	$(BIN)/snakemake -n --quiet rules

# The exact versions of every dependency (requirements.lock, used as pip constraints above), resolved
# afresh from pyproject.toml in a temporary environment.
lock:
	rm -rf /tmp/memorization-lock && $(PYTHON) -m venv /tmp/memorization-lock
	/tmp/memorization-lock/bin/pip install --quiet --upgrade pip
	/tmp/memorization-lock/bin/pip install --quiet -e '.[test]'
	(echo "# pip constraints: the exact versions make test and make run install (regenerate: make lock)"; \
	 /tmp/memorization-lock/bin/pip freeze --exclude-editable) > requirements.lock
	rm -rf /tmp/memorization-lock

clean:
	rm -rf results .snakemake
