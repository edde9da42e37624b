# The README's two commands: `make demo` and `make test`. Each creates .venv with pip when
# there is none, installs the project into it, and runs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# setuptools ends every editable install of a flat layout with an "Editable installation" note
# (a folder named like the package in the working directory could shadow it; here that folder is
# the install itself). It is information, not a fault; this filter matches that note only.
EDITABLE_NOTE := PYTHONWARNINGS="ignore:Editable installation"
AGENTS ?= 50
SEED ?= 7

.PHONY: install demo test test-slow test-faults bench bench-accuracy review bench-review clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(EDITABLE_NOTE) $(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/spm demo --agents $(AGENTS) --seed $(SEED)

test: $(STAMP) lint
	$(BIN)/python -m pytest -m "not slow and not packaging" -n 2

# The wheel check (tests/test_packaging.py): build sdist and wheel, install the wheel
# non-editable into a fresh venv, run `spm demo --agents 5` there. A release check of about
# 20 s and 30 CPU s: CI runs it (.ci/run), `make test` leaves it out.
.PHONY: test-packaging
test-packaging: $(STAMP)
	$(BIN)/python -m pytest -m packaging tests/test_packaging.py

# The lint gate (configured in pyproject.toml): part of `make test`, so of CI.
.PHONY: lint
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The slow tests, then the analyst notebooks under nbval (the design card's notebook checker):
# every cell of each notebook in a kernel of this environment (--nbval-current-env: their
# kernelspec names the `make lab` kernel, which may not be registered), on a small example
# warehouse with the short fits of SPM_WORKBENCH_FAST. A notebook's cells are separate tests that
# share its kernel, so --dist loadfile keeps each notebook on one worker.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -n 2
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BIN)/spm demo-data --agents 6 --years 2 --seed 4 --out "$$tmp/data" >/dev/null; \
	$(BIN)/spm ingest "$$tmp/data" --db "$$tmp/warehouse.duckdb" >/dev/null; \
	SPM_WAREHOUSE="$$tmp/warehouse.duckdb" SPM_WORKBENCH_FAST=1 MPLBACKEND=Agg \
	  $(BIN)/python -m pytest -p nbval --nbval-lax --nbval-current-env -n 2 --dist loadfile notebooks/*.ipynb

# The fault suite (tests/faults): reviews killed, interrupted, run twice at once, out of disk
# (a small tmpfs, so it needs the right to mount; skipped with a message otherwise), read-only
# folders. The default `make test` leaves it out (tests/conftest.py); CI runs both.
test-faults: $(STAMP)
	$(BIN)/python -m pytest tests/faults -n 2 -rA

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) data/warehouse.duckdb data/demo data/kpis

# Forecast accuracy benchmark (bench/README.md). statsforecast needs pandas<3, so it runs in its
# own benchmark-only environment, created here on first use.
BENCH_VENV ?= .venv-bench
ACCURACY_ARGS ?=

bench-accuracy: $(STAMP)
	@test -x $(BENCH_VENV)/bin/python || ($(PYTHON) -m venv $(BENCH_VENV) && $(BENCH_VENV)/bin/pip install -r bench/requirements-statsforecast.txt)
	$(BIN)/python bench/accuracy.py $(ACCURACY_ARGS)

# The analyst's workbench (README, "For analysts"): JupyterLab on the example warehouse with the
# project's kernel "spm-workbench" registered. LAB_ARGS="--no-browser --port 8890" for a server.
LAB_ARGS ?=

.PHONY: lab
lab: $(STAMP)
	$(BIN)/python -m ipykernel install --sys-prefix --name spm-workbench --display-name "SPM Workbench"
	@test -f data/warehouse.duckdb || $(BIN)/spm demo --agents $(AGENTS) --seed $(SEED)
	$(BIN)/jupyter lab --notebook-dir notebooks $(LAB_ARGS)

# The monthly review of the warehouse's last complete month (reports/<YYYY-MM>/index.html), and
# its benchmark against one plain papermill run per report (bench/review.py).
review: $(STAMP)
	$(BIN)/spm review

bench-review: $(STAMP)
	$(BIN)/python bench/review.py

# Scale (docs/scale.md): ingest, KPI memory and the review on 1 and 2 local Dask workers at 1,000,
# 5,000 and 10,000 agents. SCALE_ARGS="--sizes 1000 --reports 16" for a short run.
SCALE_ARGS ?=

.PHONY: bench-scale
bench-scale: $(STAMP)
	$(BIN)/python bench/scale.py $(SCALE_ARGS)

# Power and false positives of leading-indicator discovery: 20 seeds at 50, 200 and 1,000 agents
# (bench/README.md). Resumable: each seed is cached in bench/results/indicators/ under a key of the
# discovery code. INDICATORS_ARGS="--agents 200 --seeds 5" for a quick look, "--jobs 2" for two at a time.
INDICATORS_ARGS ?=

.PHONY: bench-indicators
bench-indicators: $(STAMP)
	$(BIN)/python bench/indicators.py $(INDICATORS_ARGS)

# Is P(quota) calibrated? Reliability tables over past quarters (bench/README.md).
.PHONY: bench-quota
bench-quota: $(STAMP)
	$(BIN)/python bench/quota_calibration.py

# The README's picture of the explorer (docs/img/explorer.png): JupyterLab on a fresh example
# warehouse, driven by Playwright with the system Chromium (no browser is downloaded).
# CHROMIUM=/path/to/chromium if it is not /usr/bin/chromium.
DOCS_STAMP := $(VENV)/.installed-docs
CHROMIUM ?= /usr/bin/chromium

$(DOCS_STAMP): $(STAMP)
	$(EDITABLE_NOTE) $(BIN)/python -m pip install --quiet -e '.[test,docs]'
	@touch $(DOCS_STAMP)

.PHONY: screenshots
screenshots: $(DOCS_STAMP)
	$(BIN)/python tools/screenshot_explorer.py --chromium $(CHROMIUM)

# Every picture in docs/img (the review's index, an agent page, the explorer) from one fresh demo
# run (tools/screenshot_reports.py): run it after a change to the reports, commit the PNGs.
.PHONY: images
images: $(DOCS_STAMP)
	$(BIN)/python tools/screenshot_reports.py --explorer --chromium $(CHROMIUM) --out docs/img
