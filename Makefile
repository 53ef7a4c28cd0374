# Quick start: `make run` then `make test`. Both build what they need from nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
DVC_VENV := .venv-dvc
MODEL ?= mortgage-denial
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONUNBUFFERED := 1
# pytest workers for `make test` (pytest-xdist; each module's tests stay on one worker, so a
# module's fixture is built once). TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2

.PHONY: help env browser run test lint typecheck ui mlflow-ui serve bench lock clean

help:
	@echo "make run        set up, run the governed pipeline, score a batch through the ledger, verify, trace"
	@echo "make test       set up and run the tests"
	@echo "make ui         Dagster UI (asset graph, checks, schedules, sensors)"
	@echo "make mlflow-ui  MLflow UI on the embedded tracking store"
	@echo "make serve      decision API and explorer (/ui) on port 8080"
	@echo "make lint       ruff + mypy"
	@echo "make bench      benchmarks (bench/)"

# The main environment: the package, Dagster, MLflow, GX, fairlearn, scikit-learn.
$(VENV)/.ready: pyproject.toml requirements/main.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements/main.txt
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
	$(VENV)/bin/python -m pip check
	touch $@

# DVC in its own environment (antlr4 4.9 vs 4.13, DESIGN §7), linked into the main one's bin/.
$(DVC_VENV)/.ready: requirements/dvc.txt
	test -x $(DVC_VENV)/bin/python || $(PYTHON) -m venv $(DVC_VENV)
	$(DVC_VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements/dvc.txt
	$(DVC_VENV)/bin/python -m pip check
	touch $@

$(VENV)/bin/dvc: $(VENV)/.ready $(DVC_VENV)/.ready
	ln -sf $(CURDIR)/$(DVC_VENV)/bin/dvc $@

env: $(VENV)/.ready $(DVC_VENV)/.ready $(VENV)/bin/dvc

# Debian's Chromium for the explorer's browser tests (Playwright drives it; it never downloads a
# browser). Needs root for apt; without it the browser tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing and not root: browser tests will skip"; fi; }

run: env
	dvc repro
	dvc push -q
	governance lineage $(MODEL)
	governance lineage $(MODEL) --verify-signature
	@echo "--- scoring the held-out applications through the decision ledger"
	governance score data/split/test.csv --model $(MODEL) --alias candidate \
	  --subject-column application_id --purpose "make run: held-out applications" \
	  --out .governance/make-run-decisions.csv
	governance audit checkpoint
	governance audit verify
	@echo "--- the full trace of one decision"
	governance audit trace $$(sed -n 2p .governance/make-run-decisions.csv | cut -d, -f1)

test: env browser
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadscope

lint: env
	ruff check governance tests bench
	ruff format --check governance tests bench
	mypy governance

ui: env
	mkdir -p .governance/dagster
	DAGSTER_HOME=$(CURDIR)/.governance/dagster dagster dev -w workspace.yaml

serve: env
	@echo "create a key first: governance keys create --role scorer (or auditor for /ui)"
	governance serve --model $(MODEL) --alias $${ALIAS:-candidate} --port $${PORT:-8080}

mlflow-ui: env
	mlflow ui --backend-store-uri sqlite:///$(CURDIR)/.governance/mlflow.db --port 5000

bench: env
	$(VENV)/bin/python -m bench

# Re-pin every package after changing pyproject.toml (needs the package registry).
lock:
	rm -rf /tmp/governance-lock && $(PYTHON) -m venv /tmp/governance-lock
	/tmp/governance-lock/bin/pip install -q '.[dev]'
	{ head -2 requirements/main.txt; /tmp/governance-lock/bin/pip freeze --exclude-editable | grep -v '^governance'; } > requirements/main.tmp
	mv requirements/main.tmp requirements/main.txt

clean:
	rm -rf data models reports metrics plots .governance
