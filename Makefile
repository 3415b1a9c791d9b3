# The two commands of the README: `make demo` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_WAREHOUSE ?= .cache/demo-warehouse

.PHONY: install lint demo test bench clean

install: $(VENV)/.installed

# pinned in pyproject.toml; constraints.txt locks everything else
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[wiring,test,lint]"
	touch $@

# style, then types (configured in pyproject.toml)
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

demo: install
	rm -rf $(DEMO_WAREHOUSE) .cache/sample
	$(BIN)/circuitlake --warehouse $(DEMO_WAREHOUSE) demo --corpus .cache/sample --report .cache/audit_report.md

test: install
	$(BIN)/pytest
	$(MAKE) demo

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf .cache warehouse/lake warehouse/*.duckdb
