# mathsight: `make run` (set up everything, then the dashboard) and `make test` (set up, whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
CHROMIUM ?= /usr/bin/chromium

.PHONY: install translations data models run api test lint bench evaluate browser promtool clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

translations: install
	$(PY) -m model compile-translations

data: install translations
	$(PY) -m model fetch-data

models: data
	$(PY) -m model bootstrap

run: models
	$(VENV)/bin/streamlit run dashboard/server.py --server.address localhost --server.port $(PORT)

api: models
	$(VENV)/bin/uvicorn api.main:app --host 127.0.0.1 --port 8000  # one process; the Procfile runs workers

# Debian's Chromium for the browser tests; installed when missing and we may (root), else those tests skip.
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
				|| echo "warning: could not install chromium; browser tests will skip"; \
		else echo "warning: $(CHROMIUM) missing (apt-get install chromium); browser tests will skip"; fi; \
	fi

# Debian's prometheus package for promtool (the rules and a real scrape are checked by the suite); as chromium.
PROMTOOL ?= /usr/bin/promtool
promtool:
	@if [ ! -x $(PROMTOOL) ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null) \
				|| echo "warning: could not install prometheus (promtool); its tests will skip"; \
		else echo "warning: $(PROMTOOL) missing (apt-get install prometheus); promtool tests will skip"; fi; \
	fi

test: data browser promtool
	$(PY) -m pytest -n 2 --dist loadfile -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: models
	$(PY) -m bench

evaluate: data
	$(PY) -m model evaluate --runs 20 --json data/local/evaluation.json

clean:
	rm -rf $(VENV) data/raw data/local
