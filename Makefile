# The two commands: `make demo` and `make test`. Each creates .venv with the pinned dependencies if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := build/demo

.PHONY: demo test lint bench clean

$(BIN)/.installed: requirements.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python scripts/metric_example.py --out $(DEMO_DIR)
	$(BIN)/mapdistill eval-vectors --pred $(DEMO_DIR)/pred.json --gt $(DEMO_DIR)/gt.json --out $(DEMO_DIR)/result.json
	$(BIN)/mapdistill plot-vectors --pred $(DEMO_DIR)/pred.json --gt $(DEMO_DIR)/gt.json --token example-000 --out $(DEMO_DIR)/example-000.png

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/eval_speed.py
	$(BIN)/python benchmarks/synthetic_speed.py
	$(BIN)/python benchmarks/model_speed.py

clean:
	rm -rf build .pytest_cache .hypothesis
