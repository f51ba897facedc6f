# continuum — the two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip
STAMP   = $(VENV)/.installed

.PHONY: venv test test-fast zipapp bench completions clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -e '.[dev,local]'
	touch $(STAMP)

venv: $(STAMP)

# The one test command (README, CI): the whole suite, zipapp and real-backend tests included.
test: $(STAMP)
	$(PY) -m pytest -q

# Everything except the slow packaging test.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not zipapp"

zipapp: $(STAMP)
	mkdir -p dist
	$(VENV)/bin/shiv -c continuum -o dist/continuum.pyz -p "/usr/bin/env python3" --reproducible .

bench: $(STAMP)
	$(PY) bench/overhead.py

completions: $(STAMP)
	$(PY) -m continuum_cli.cli.completions_gen completions

clean:
	rm -rf dist build *.egg-info .pytest_cache
