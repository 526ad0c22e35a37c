# Two commands on a fresh machine: `make run` (serve the console with a demo workspace) and
# `make test` (the whole suite). Both create .venv and install what they need first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# numpy's BLAS threads fight torch's on small machines (measured 4-5x slower on 2 cores)
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: run test install migrate demo serve worker browser lint clean

# The local commands run the embedded demo with DEBUG on (the dev secret key, localhost, plain
# static files); anything else gets the settings' default, off. An exported DJANGO_DEBUG wins.
run demo migrate test worker lint: export DJANGO_DEBUG ?= true

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || "$$(scripts/find-python)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py seed_demo --seed 0 --if-missing
	$(PY) manage.py train_demo_policy --seed 0
	$(PY) manage.py run_campaign --explain --once-per-day

## make run: set up, seed the demo workspace and train its first policy unless present, print the
## logins, serve.
run: demo
	@echo "Serving http://$(HOST):$(PORT)/  (Ctrl-C stops)"
	$(PY) manage.py runserver $(HOST):$(PORT)

## Chromium for the browser tests (Debian package; Playwright drives it, downloads nothing).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

## make test: set up and run the whole suite (embedded default unless DATABASE_URL / REDIS_URL are set).
test: install browser
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

worker: install
	$(VENV)/bin/celery -A crm_console worker -Q default,training,decisions -l info

lint: install
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var staticfiles test-artifacts
