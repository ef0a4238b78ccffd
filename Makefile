# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test unit lint typecheck docs browser dist test-matrix wrk bench bench-worker-mode bench-sampler \
	bench-catalog clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python sample_configs/demo.py

# The pictures of README.md and docs/cli.md (docs/images/), from the demo's reports, in chromium.
.PHONY: screenshots
screenshots: $(STAMP) browser
	$(BIN)/python sample_configs/screenshots.py

lint: $(STAMP)
	$(BIN)/ruff check gunicorn_pyinstrument tests bench sample_configs
	$(BIN)/ruff format --check gunicorn_pyinstrument tests bench sample_configs

typecheck: $(STAMP)
	$(BIN)/mypy

# The web page's tests drive Debian's chromium with playwright (no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		export DEBIAN_FRONTEND=noninteractive; \
		$$SUDO apt-get install -y --no-install-recommends chromium || \
		{ $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends chromium; }; }

test: lint typecheck browser
	$(BIN)/python -m pytest -q --durations=15

# The quick loop: the unit tests only (no browser, no servers), in well under a minute.
unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

# The sdist and the wheel in dist/, built as a release would be and checked by twine; the wheel's
# contents, and the wheel installed into a fresh virtualenv, are tested in tests/distribution/.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

# The suite on each Python (3.10 to 3.14, those installed), gunicorn and pyinstrument in the declared
# ranges, one line per combination (tests/matrix.py). Long: each combination is a whole run, in its
# own virtualenv, one after the other; logs under /tmp. Not part of `make test`.
# Fewer: make test-matrix MATRIX_ARGS="--only oldest,newest"
test-matrix: browser
	$(PYTHON) tests/matrix.py $(MATRIX_ARGS)

# Regenerates docs/configuration.md from the settings declarations (a test checks it is current).
docs: $(STAMP)
	$(BIN)/python -m gunicorn_pyinstrument.settings > docs/configuration.md

# The load generator of the server benchmarks, from Debian's packages when it is missing.
wrk:
	@command -v wrk >/dev/null 2>&1 || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get install -y wrk || { $$SUDO apt-get update && $$SUDO apt-get install -y wrk; }; }

# Throughput and CPU cost of the plugin (docs/benchmarks.md); needs wrk.
# Quicker: make bench BENCH_ARGS="--rounds 2 --duration 3"
bench: $(STAMP) wrk
	$(BIN)/python bench/throughput.py $(BENCH_ARGS)

# Per-worker mode (docs/benchmarks.md): worker RSS over 10 minutes of load, and throughput against
# the plugin off, per worker type; needs wrk. About 15 minutes.
# Quicker: make bench-worker-mode BENCH_ARGS="--minutes 1"
bench-worker-mode: $(STAMP) wrk
	$(BIN)/python bench/worker_mode.py $(BENCH_ARGS)

# Sampler engine (docs/benchmarks.md, "Sampler engine"): every request sampled, at the default budget
# and at 100 Hz without one, against the plugin off, for sync and gthread; needs wrk. About
# 5 minutes. Quicker: make bench-sampler BENCH_ARGS="--rounds 3 --duration 2"
bench-sampler: $(STAMP) wrk
	$(BIN)/python bench/sampler.py $(BENCH_ARGS)

# Thread pools (docs/benchmarks.md, "Thread pools"): a FastAPI `def` route and a Django ASGI sync view
# under UvicornWorker, SAMPLE_RATE=0.01 and the sampler engine against the plugin off; needs wrk.
# About 7 minutes. Quicker: make bench-threadpools BENCH_ARGS="--rounds 3 --duration 2"
.PHONY: bench-threadpools
bench-threadpools: $(STAMP) wrk
	$(BIN)/python bench/threadpools.py $(BENCH_ARGS)

# Catalog and CLI on 100,000 synthetic reports (docs/benchmarks.md, "Catalog and CLI").
bench-catalog: $(STAMP)
	$(BIN)/python bench/catalog.py $(BENCH_ARGS)

# The serve page's pictures in chromium on 10,000 synthetic reports (docs/benchmarks.md, "Web page
# charts"): the latency chart (target: drawn within 1 s) and a flame graph of 1,000 merged sessions.
.PHONY: bench-web
bench-web: $(STAMP) browser
	$(BIN)/python bench/web_charts.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
