# The two commands of the README: `make demo` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= out/demo

.PHONY: setup demo test lint bench clean

setup:
	@scripts/setup.sh $(VENV) test

demo: setup
	$(BIN)/gensep demo --config configs/demo.yaml --out $(OUT)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/bench_dsp.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
