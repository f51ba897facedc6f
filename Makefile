# continuum — the two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip
STAMP   = $(VENV)/.installed

.PHONY: venv test test-fast fuzz zipapp bench bench-cli completions clean run claude-code

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -e '.[dev,local]'
	touch $(STAMP)

venv: $(STAMP)

# The one test command (README, CI): the whole suite, zipapp and real-backend tests included.
# The pinned Claude Code CLI is installed first when npm is available; without it the
# end-to-end tests skip with that reason (on CI, where .ci/run installs it, they must run).
test: $(STAMP)
	@$(MAKE) -s claude-code || echo "note: Claude Code CLI not installed; end-to-end tests will skip"
	$(PY) -m pytest -q

# The property tests with 20 times the examples and random seeds (make test runs them with
# the quick, deterministic `ci` profile); failures found are kept in .hypothesis/ and replayed.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q tests/property

# Everything except the slow packaging test.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not zipapp"

zipapp: $(STAMP)
	mkdir -p dist
	$(VENV)/bin/shiv -c continuum -o dist/continuum.pyz -p "/usr/bin/env python3" --reproducible \
	  --compile-pyc .

bench: $(STAMP)
	$(PY) bench/overhead.py
	$(PY) bench/metrics.py

# Start-up time of `continuum --version`, `--help` and a completion TAB (installed and zipapp).
bench-cli: $(STAMP)
	$(PY) bench/cli_startup.py

bench-real: $(STAMP)
	$(PY) bench/realengine.py

completions: $(STAMP)
	$(PY) -m continuum_cli.cli.completions_gen completions

# Start the router. With no config.yaml and no local backend it serves the embedded
# llama.cpp backend (SmolLM2-135M, fetched once into the user cache).
run: $(STAMP)
	$(VENV)/bin/continuum serve

# The pinned Claude Code CLI for the end-to-end tests, in a gitignored folder. npm may skip
# the postinstall that puts the native binary in place; it is run by hand if so.
CC_VERSION = 2.1.332
CC_DIR     = .cache/cc
CC_STAMP   = $(CC_DIR)/.installed-$(CC_VERSION)

claude-code: $(CC_STAMP)

$(CC_STAMP):
	mkdir -p $(CC_DIR)
	test -f $(CC_DIR)/package.json || echo '{"name":"continuum-e2e-cc","private":true}' > $(CC_DIR)/package.json
	cd $(CC_DIR) && npm install --no-audit --no-fund --loglevel=error @anthropic-ai/claude-code@$(CC_VERSION)
	$(CC_DIR)/node_modules/.bin/claude --version | grep -q '$(CC_VERSION)' || \
	  (cd $(CC_DIR) && node node_modules/@anthropic-ai/claude-code/install.cjs)
	$(CC_DIR)/node_modules/.bin/claude --version | grep -q '$(CC_VERSION)'
	touch $(CC_STAMP)

clean:
	rm -rf dist build *.egg-info .pytest_cache
