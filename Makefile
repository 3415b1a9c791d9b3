# The two commands of the README: `make demo` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= .cache
DEMO_WAREHOUSE ?= $(DEMO_DIR)/demo-warehouse
# the demo's output in `make test` (written by tests/test_package.py)
DEMO_LOG := .cache/test-artifacts/demo.log

.PHONY: install spark browser lint check demo demo-steps test test-package test-spark test-stress bench clean

install: $(VENV)/.installed

# pinned in pyproject.toml; constraints.txt locks everything else. pip installs uv and torch (pip takes a
# machine's own CPU wheel of torch where its config names one; uv would fetch the CUDA build) without
# compiling torch's thousands of modules (33 -> 15 s; what is imported compiles once, below), uv the rest
# (several times faster than pip): from its cache alone first, since where the registry answers uv's
# revalidation of a source distribution anew (pyspark ships one) uv rebuilds it every time (25 s); on a
# machine whose cache lacks something, from the registry
UV := $(BIN)/uv pip install -q --python $(BIN)/python -c constraints.txt
UV_CACHED_FIRST = $(UV) --offline $(1) 2>/dev/null || $(UV) $(1)
DEV := ".[wiring,test,lint]"

# Python caches each module's bytecode in the venv as it first imports it: uv installs none, and where
# PYTHONDONTWRITEBYTECODE is set (as on this machine) every new process (CLI calls, test workers, the demo)
# compiled sqlmesh, sqlglot, pandas... from source again (measured: `import sqlmesh` 2.7 -> 7.6 s; the CLI
# and stress tests 70 -> 145 s). Compiling every package at install instead (uv --compile-bytecode) took 22 s.
unexport PYTHONDONTWRITEBYTECODE

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --no-compile -c constraints.txt uv torch
	$(call UV_CACHED_FIRST,-e $(DEV))
	touch $@

# the spark gateway: pyspark (the `spark` extra) and a JDK 17 from the system packages
spark: $(VENV)/.spark

$(VENV)/.spark: $(VENV)/.installed
	@command -v java >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; } || \
	  { echo "install a JDK 17 (apt-get install openjdk-17-jre-headless) for the spark gateway" >&2; exit 1; }
	$(call UV_CACHED_FIRST,-e ".[spark]")
	touch $@

# headless Chromium and its driver from the system packages: the HTML report test opens the page in it,
# the explorer test drives `circuitlake serve` with it (selenium)
browser:
	@{ command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; } && command -v chromedriver >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  { echo "install chromium and chromium-driver (apt-get install chromium chromium-driver) for the browser tests" >&2; exit 1; }

# style, then types across every layer (configured in pyproject.toml; the probe: a type error across
# layers must fail mypy), then the SQL house style (linter/, sqlmesh_config.yaml `linter`)
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@$(BIN)/mypy --config-file /dev/null --cache-dir .mypy_cache/probe --ignore-missing-imports -c 'from circuitlake.jobs.cluster import cluster; wrong: int = cluster' 2>/dev/null \
	  | grep -q 'Incompatible types in assignment' || { echo "lint: mypy does not type imports across layers" >&2; exit 1; }
	@out=$$(CIRCUITLAKE_WAREHOUSE=$$(mktemp -d) $(BIN)/sqlmesh lint 2>&1); echo "$$out"; \
	  ! echo "$$out" | grep -q "Linter" || { echo "lint: the SQL breaks the house style (above)" >&2; exit 1; }

demo: install
	@$(MAKE) --no-print-directory demo-steps

# the demo's commands with the circuitlake of $(BIN), writing under $(DEMO_DIR): after `install` (`make demo`),
# or from the wheel installed in a fresh venv elsewhere (tests/test_package.py: how `make test` runs the demo)
demo-steps:
	rm -rf $(DEMO_WAREHOUSE) $(DEMO_DIR)/sample
	$(BIN)/circuitlake --warehouse $(DEMO_WAREHOUSE) demo --corpus $(DEMO_DIR)/sample --report $(DEMO_DIR)/audit_report.md
	$(BIN)/circuitlake --warehouse $(DEMO_WAREHOUSE) report --html $(DEMO_DIR)/atlas_report.html --atlas sample
	$(BIN)/circuitlake --warehouse $(DEMO_WAREHOUSE) search "aspirin dosing" --limit 5 --atlas sample
	$(BIN)/circuitlake --warehouse $(DEMO_WAREHOUSE) neuron 1_10_3 --atlas sample-clt --top 3
	@echo "browse it: $(BIN)/circuitlake --warehouse $(DEMO_WAREHOUSE) serve   (then open http://127.0.0.1:8765/)"

# everything in one run on every core (pytest-xdist, a file per worker at a time): the unit tests, the
# scenarios, the wheel in a fresh venv and the Spark build (which start first: they take longest). The demo
# runs once, from the wheel (`demo-steps` with the wheel's circuitlake: tests/test_package.py); its output,
# with the audit report, is shown at the end. One worker more than cores: workers wait on their CLI
# processes, Spark's JVM and the browser (2 cores: 1.44 cores busy with 2 workers, 1.76 with 3; pytest
# 11:09 -> 10:54). Two workers per core measured no faster (18:56 against 18:32).
WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
test: install browser spark
	rm -f $(DEMO_LOG); $(BIN)/pytest -n $(WORKERS) --dist loadfile --no-loadscope-reorder --durations=15 -m "package or spark or not (package or spark)"; \
	  suite=$$?; cat $(DEMO_LOG) 2>/dev/null || echo "make test: the demo did not run (tests/test_package.py)" >&2; exit $$suite

# the edit loop: style, types and the unit tests (no SQLMesh plan), in under a minute
check: lint
	$(BIN)/pytest -n auto tests/unit

# the built wheel in a fresh venv outside the repo: the demo, `circuitlake init`, `sqlmesh plan` there
test-package: install
	$(BIN)/pytest -m package

# the demo atlas built on a local Spark session equals the DuckDB build (tests/test_spark.py)
test-spark: spark
	$(BIN)/pytest -m spark

# rounds of concurrent writers killed with SIGKILL at random points, each checked against a clean warehouse;
# the figures go to bench/RESULTS.md (the suite runs a 2-round version: tests/test_stress.py)
test-stress: install
	STRESS_ROUNDS=$${STRESS_ROUNDS:-12} $(BIN)/python bench/run.py stress

bench: install spark
	$(BIN)/python bench/run.py

clean:
	rm -rf .cache warehouse/lake warehouse/*.duckdb
