# One command per task; .ci/run uses the same ones.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install check format test bench demo

install:  ## create the venv and install apigetter with its dev tools
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'

check:  ## lint, format check and strict typing
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy --strict apigetter

format:  ## apply ruff fixes and formatting
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

test:  ## the test suite (README's test command)
	$(PY) -m pytest

bench:  ## the benchmarks; rewrites benchmarks/results.md
	$(PY) benchmarks/run.py

demo:  ## the offline demo
	$(VENV)/bin/apigetter demo
