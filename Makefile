# Common tasks. `make setup` creates .venv; the other targets expect it to be active (or use .venv/bin).
PY ?= python

.PHONY: setup demo test lint typecheck check

setup:
	python3 -m venv .venv && .venv/bin/pip install --quiet --upgrade pip && \
	.venv/bin/pip install --quiet torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu && .venv/bin/pip install --quiet -e ".[test]"

demo:
	$(PY) -m decoderlens demo --out decoderlens-demo

lint:
	$(PY) -m ruff check src tests benchmarks docs

typecheck:
	$(PY) -m mypy

test:
	$(PY) -m pytest -p no:cacheprovider

check: lint typecheck test
