# make run   set up what is missing, migrate, seed demo data, start localstripe and the console
# make test  set up what is missing (Chromium too), lint, and run every test (unit and integration
#            tests in two processes, one per core; a test file stays in one process)
# make lint  ruff (lint and format check) and mypy, configured in pyproject.toml
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUN := .tools/npm-global/bin/bun
NODE := .tools/npm-global/bin/node
STAMP := $(VENV)/.installed

.PHONY: run test lint setup setup-browser unit integration e2e bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

$(BUN):
	npm install -g --prefix ./.tools/npm-global --no-fund --no-audit --loglevel=error bun@1.4.5

# Reflex 0.10.1 asks for Node 22.22 or later (Debian 12 has 18, the README's minimum is 20): the
# npm package ships the binary, so it installs from the npm registry like bun.
$(NODE):
	npm install -g --prefix ./.tools/npm-global --no-fund --no-audit --loglevel=error node@22.23.3

setup: $(STAMP) $(BUN) $(NODE)

setup-browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

run: setup
	$(BIN)/python -m app.cli serve

lint: $(STAMP)
	$(BIN)/ruff check app tests
	$(BIN)/ruff format --check app tests
	$(BIN)/mypy

test: setup setup-browser lint
	$(BIN)/python -m pytest tests/unit tests/integration -q -p no:cacheprovider -n 2 --dist loadfile
	$(BIN)/python -m pytest tests/e2e -q -p no:cacheprovider --screenshot only-on-failure --output test-results

bench: setup
	$(BIN)/python bench/balance_history.py
	$(BIN)/python bench/metering.py
	$(BIN)/python bench/metering_scale.py
	$(BIN)/python bench/usage_rollup.py

clean:
	rm -rf .web .web-e2e .states test-results
