# The README's two commands: `make demo` and `make test`. Each creates .venv with pip when
# there is none, installs the project into it, and runs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
AGENTS ?= 50
SEED ?= 7

.PHONY: install demo test test-slow bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/spm demo --agents $(AGENTS) --seed $(SEED)

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n 2

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) data/warehouse.duckdb data/demo data/kpis
