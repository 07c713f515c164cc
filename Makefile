# Every target sets up .venv on its own: a new user runs `make demo` or `make test` and nothing else.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
DOCS_STAMP := $(VENV)/.docs-installed

.PHONY: demo test lint bench bench-quick quality docs figures accel-check clean dist \
	wheel-check typecheck stubs test-oldest test-newest

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# torch is optional for the benchmarks: try the pinned CPU build, carry on without it.
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]' || \
		echo "torch==2.13.0 did not install: the torch contenders will be reported as n/a"
	touch $(BENCH_STAMP)

# The site's tools (mkdocs, mkdocstrings, matplotlib): the `docs` extra, on top of `test`.
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,docs]'
	touch $(DOCS_STAMP)

demo: $(STAMP)
	$(PY) -m rngstate demo

# The suite runs on every core (up to 4 workers): it is mostly compiling, one core per process.
# Whole files go to one worker, so that a module's fixture (a multi-device subprocess) runs once.
PYTEST_WORKERS := -n auto --maxprocesses 4 --dist loadfile

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q $(PYTEST_WORKERS) --durations=15

bench: $(BENCH_STAMP)
	$(PY) -m benchmarks --mode full

bench-quick: $(STAMP)
	$(PY) -m benchmarks --mode quick

lint: $(STAMP)
	$(PY) -m ruff check .

# The release artefacts: dist/rngstate-<version>.tar.gz and the wheel built from it.
dist: $(STAMP)
	rm -rf dist
	$(PY) -m build --outdir dist .

# The wheel installed into a fresh venv outside the source tree: doctor, a draw, pyright.
wheel-check: $(STAMP)
	PYTHON=$(abspath $(PY)) tests/wheel_check.sh

# pyright on tests/typing/typed_example.py (also part of `make test`), and the stubs' freshness.
typecheck: $(STAMP)
	$(PY) -m pytest -q tests/test_typing.py

# Regenerate the op stubs (rngstate/_random_ops.pyi, _stateful_ops.pyi) after adding an op
# or moving the JAX they are generated with.
stubs: $(STAMP)
	$(PY) -m rngstate._stubgen

# The lowest supported JAX (pyproject's jax>=/jaxlib>=), pinned, in its own venv: the tests
# that exercise what differs between JAX versions (the newest JAX runs the whole suite).
OLDEST_JAX := 0.6.2
OLDEST := .venv-oldest
OLDEST_STAMP := $(OLDEST)/.installed-jax-$(OLDEST_JAX)
# tests/test_sharding.py is left out: on jax 0.6.2 it fails 3 of 82 (docs/compatibility.md).
OLDEST_TESTS := tests/test_derivation.py tests/test_generator.py tests/test_random_ops.py \
	tests/test_fast.py tests/test_jax_compat.py tests/golden

$(OLDEST_STAMP): pyproject.toml
	rm -rf $(OLDEST)
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST)/bin/python -m pip install --quiet -e '.[test-core]' \
		'jax==$(OLDEST_JAX)' 'jaxlib==$(OLDEST_JAX)'
	touch $(OLDEST_STAMP)

test-oldest: $(OLDEST_STAMP)
	$(OLDEST)/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_WORKERS) $(OLDEST_TESTS)

# The newest JAX that installs (it needs Python >= 3.12), pinned, in its own venv: the whole
# suite. Moving the pin: docs/compatibility.md. NEWEST_PYTHON= picks the interpreter; by default
# the newest python3.13/python3.12 that runs, from PATH or pyenv (tests/find_python.sh).
NEWEST_JAX := 0.12.0.1
NEWEST := .venv-newest
NEWEST_STAMP := $(NEWEST)/.installed-jax-$(NEWEST_JAX)
NEWEST_PYTHON ?=
# The multi-device files run in `make test` only (once per CI run, not once per JAX): they
# spawn 8-device subprocesses and take a third of the suite's time (docs/compatibility.md).
NEWEST_DESELECT ?= --ignore=tests/test_sharding.py --ignore=tests/test_mesh.py

$(NEWEST_STAMP): pyproject.toml
	rm -rf $(NEWEST)
	python=$${NEWEST_PYTHON:-$$(bash tests/find_python.sh 3.12)} && \
		"$$python" -m venv $(NEWEST)
	$(NEWEST)/bin/python -m pip install --quiet --upgrade pip
	$(NEWEST)/bin/python -m pip install --quiet -e '.[test]' \
		'jax==$(NEWEST_JAX)' 'jaxlib==$(NEWEST_JAX)'
	touch $(NEWEST_STAMP)

test-newest: $(NEWEST_STAMP)
	$(NEWEST)/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_WORKERS) --durations=15 \
		$(NEWEST_DESELECT)

# dieharder on three bit streams; writes docs/quality.md. Not part of CI: the full battery
# takes about an hour per stream. QUALITY=standard (full battery on one seed, named subset on
# the interleaved streams), full, or subset. Installs the Debian package dieharder if missing.
QUALITY ?= standard
quality: $(STAMP)
	$(PY) tests/quality/run_dieharder.py run --mode $(QUALITY)

# The site, into site/. --strict: a broken link, reference or docstring fails the build.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

# Regenerates the committed pictures under docs/figures/ (the site build does not).
figures: $(DOCS_STAMP)
	$(PY) docs/figures/make_figures.py

# The accelerator check: the test suite on the default JAX backend, every op against the host
# CPU, the fast path benchmarked on and off; writes benchmarks/results/accel-<platform>.json
# and docs/accelerators.md. Not part of CI. ACCEL="--tests=full" runs the whole suite.
ACCEL ?= --tests=quick
accel-check: $(STAMP)
	$(PY) -m benchmarks.accel_check $(ACCEL)

clean:
	rm -rf $(VENV) $(OLDEST) $(NEWEST) .pytest_cache .hypothesis build dist site *.egg-info
