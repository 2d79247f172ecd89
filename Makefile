# The two commands: `make run` and `make test`. Everything is installed from this repository's files.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EMBED := $(PY) -m platform_core.embedded --

NPM_STAMP := node_modules/.installed

.PHONY: run test install npm lint chromium xmlsec1 bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# npm packages, exactly as package-lock.json pins them (versions and checksums), never committed: Label
# Studio's editor bundle (served as static files from node_modules/) and Azurite (the storage tests'
# Azure Blob server). No install scripts run.
$(NPM_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
	  else echo "npm is missing: sudo apt-get install nodejs npm"; exit 1; fi; }
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

npm: $(NPM_STAMP)

install: $(STAMP) npm

# Debian's Chromium drives the browser tests (never `playwright install`, which downloads).
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: sudo apt-get install chromium"; exit 1; fi; }

run: install npm
	$(PY) -m platform_core.devserver

# pysaml2 (the test suite's identity provider) signs with Debian's xmlsec1 binary.
xmlsec1:
	@command -v xmlsec1 >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xmlsec1 >/dev/null; \
	  else echo "xmlsec1 is missing: sudo apt-get install xmlsec1"; exit 1; fi; }

test: install npm chromium xmlsec1
	$(EMBED) $(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(EMBED) $(PY) bench/provisioning.py

clean:
	rm -rf $(VENV) .data node_modules
