# optbench: `make help` lists the targets.
PY      ?= .venv/bin/python
PROFILE ?= quick
ARGS    ?=

.DEFAULT_GOAL := help
.PHONY: help install test test-slow lint bench bench-step report reliability clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-12s %s\n", $$1, $$2}'

install: ## create .venv and install the suite with every dependency (CPU torch pins in constraints.txt)
	python3 -m venv .venv
	.venv/bin/pip install --upgrade pip
	.venv/bin/pip install -c constraints.txt -e '.[dev]'

test: ## run the fast test set (not slow, not gpu)
	$(PY) -m pytest -q $(ARGS)

test-slow: ## run the slow tests too
	$(PY) -m pytest -q -m "not gpu" $(ARGS)

lint: ## ruff lint and format check
	$(PY) -m ruff check suite tests scripts
	$(PY) -m ruff format --check suite tests scripts

bench: ## run a bench profile and write its report to results/<profile> (PROFILE=quick|full|nightly)
	$(PY) -m suite.bench.profile $(PROFILE) $(ARGS)

bench-step: ## time one optimizer step for every registry entry (1M/10M/50M params)
	$(PY) -m suite.bench.step $(ARGS)

report: ## tables and plots from run records: make report RUNS=runs OUT=results/report [ARGS=--force]
	$(PY) -m suite.report $(or $(RUNS),runs) --out $(or $(OUT),results/report) $(ARGS)

clean: ## remove caches (never results/ or runs)
	rm -rf .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
