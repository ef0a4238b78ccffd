# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python sample_configs/demo.py

lint: $(STAMP)
	$(BIN)/ruff check gunicorn_pyinstrument tests bench sample_configs
	$(BIN)/ruff format --check gunicorn_pyinstrument tests bench sample_configs

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/python -m pytest -q

# Regenerates docs/configuration.md from the settings declarations (a test checks it is current).
docs: $(STAMP)
	$(BIN)/python -m gunicorn_pyinstrument.settings > docs/configuration.md

bench: $(STAMP)
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
