# Every target sets up .venv on its own: a new user runs `make demo` or `make test` and nothing else.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-quick quality clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m rngstate demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .

# dieharder on three bit streams; writes docs/quality.md. Not part of CI: the full battery
# takes about an hour per stream. QUALITY=standard (full battery on one seed, named subset on
# the interleaved streams), full, or subset. Installs the Debian package dieharder if missing.
QUALITY ?= standard
quality: $(STAMP)
	$(PY) tests/quality/run_dieharder.py run --mode $(QUALITY)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
