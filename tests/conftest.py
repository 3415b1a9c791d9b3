"""Shared fixtures: temporary warehouses, small sample corpora, a registered atlas."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from circuitlake import lake, registry
from circuitlake.app.demo import run_demo
from circuitlake.app.sample import SampleSpec, write_graphs
from circuitlake.settings import REPO_ROOT, warehouse

ARTIFACTS = REPO_ROOT / ".cache" / "test-artifacts"  # screenshots of the browser tests


# the files that read the session's demo atlas (`demo_wh`): one work unit under pytest-xdist, so that
# the atlas is built by one worker only; the Spark test last of them (it adds to the atlas's lake)
DEMO_READERS = ("test_explore.py", "test_export.py", "test_readers.py", "test_serve.py", "test_spark.py")


def pytest_collection_modifyitems(items):
    """The longest work first (the wheel in a fresh venv, then the demo atlas's readers with the Spark
    build at their end) and the quick unit tests last, so that on several workers (`make test`:
    pytest-xdist, a file per worker, in this order) no long work unit starts last."""

    def rank(item) -> tuple[bool, bool, bool, bool]:
        file = Path(item.path).name
        return not item.get_closest_marker("package"), file not in DEMO_READERS, file == "test_spark.py", "/unit/" in item.nodeid

    items.sort(key=rank)


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile`, with the DEMO_READERS files as one work unit."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class DemoReadersTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = super()._split_scope(nodeid)
            return "demo readers" if Path(file).name in DEMO_READERS else file

    return DemoReadersTogether(config, log)


SMALL = SampleSpec(graphs=24, min_nodes=60, max_nodes=120, seed=3)
# the session's demo atlas: its wiring drawn at random (computed wiring is tested in test_wiring.py, test_label.py)
DEMO_SPEC = SampleSpec(graphs=80, min_nodes=120, max_nodes=200, seed=0, computed_wiring=False)


@pytest.fixture
def wh(tmp_path, monkeypatch):
    """An empty warehouse in a temporary folder, also set as $CIRCUITLAKE_WAREHOUSE."""
    w = warehouse(tmp_path / "warehouse")
    monkeypatch.setenv("CIRCUITLAKE_WAREHOUSE", str(w.root))
    lake.ensure(w)
    return w


@pytest.fixture
def atlas(wh):
    registry.add(
        wh, registry.AtlasRecord(atlas="small", model_id="test/8x512", num_layers=SMALL.layers, neurons_per_layer=SMALL.neurons_per_layer)
    )
    return "small"


@pytest.fixture(scope="session")
def demo_wh(tmp_path_factory):
    """The demo atlas (`circuitlake demo` on an 80-graph sample corpus), built once per session. Tests
    read it; one adds label embeddings to it, which changes nothing the others read; the Spark test,
    which runs after them, adds a graph batch and a second atlas."""
    root = tmp_path_factory.mktemp("demo")
    wh = warehouse(root / "warehouse")
    lake.ensure(wh)
    assert run_demo(wh, root / "corpus", root / "report.md", DEMO_SPEC, transcoder=None) == 0
    return wh


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """24 small graphs (json, json.gz, pretty and compact, int and string layers)."""
    out = tmp_path_factory.mktemp("corpus")
    write_graphs(SMALL, out)
    return out / "graphs"


def cli(*args: str, wh: Path | str | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    """`circuitlake *args` (on warehouse `wh`, else $CIRCUITLAKE_WAREHOUSE) run in this process by
    typer's CliRunner: the same app, exit code, stdout and stderr as the command, without a Python start
    and its imports per call. An exception the app lets escape fails the test with its traceback (the
    command would print it and exit 1). tests/test_cli.py runs the real process."""
    from typer.testing import CliRunner

    from circuitlake.app.cli import app

    env = {"CIRCUITLAKE_WAREHOUSE": str(wh)} if wh else {}
    done = CliRunner().invoke(app, list(args), input=input, env=env, catch_exceptions=False)
    return subprocess.CompletedProcess(["circuitlake", *args], done.exit_code, done.stdout, done.stderr)


def physical_table(con, name: str) -> str:
    """`schema.table` of a SQLMesh model's physical table in a warehouse DuckDB connection: `name` is
    `<schema>__<model>` (e.g. 'main__edges', 'stg__edge_partials')."""
    return con.execute(
        "select table_schema || '.' || table_name from information_schema.tables where regexp_matches(table_name, ?)",
        [f"^{name}__[0-9]+$"],
    ).fetchone()[0]


def ledger_table(con, name: str) -> str:
    """`schema.table` of the ledger of an `append_batches` model's physical table (`name` as for physical_table)."""
    return physical_table(con, name) + "__batches"


def write_graph(path: Path, graph: dict) -> Path:
    path.write_text(json.dumps(graph))
    return path


def tiny_graph(weight_a: float = 0.5, prompt: str = "p") -> dict:
    """A hand-made graph: two neurons, an embedding and a logit."""
    return {
        "metadata": {"slug": "t", "prompt": prompt, "prompt_tokens": ["<bos>", "x"], "corpus_index": 1},
        "nodes": [
            {"node_id": "E_9_0", "feature": 9, "layer": "E", "ctx_idx": 0, "feature_type": "embedding", "isLogit": False},
            {
                "node_id": "0_5_0",
                "feature": 5,
                "layer": "0",
                "ctx_idx": 0,
                "feature_type": "mlp_neuron",
                "influence": -2.0,
                "activation": 1.0,
            },
            {"node_id": "3_7_1", "feature": 7, "layer": 3, "ctx_idx": 1, "feature_type": "mlp_neuron", "influence": 0.5, "activation": 2.0},
            {"node_id": "L_12_1", "feature": 12, "layer": "4", "ctx_idx": 1, "feature_type": "logit", "isLogit": True},
        ],
        "links": [
            {"source": "E_9_0", "target": "0_5_0", "weight": 1.0},
            {"source": "0_5_0", "target": "3_7_1", "weight": weight_a},
            {"source": "3_7_1", "target": "L_12_1", "weight": 0.25},
        ],
    }


def system_binary(*names: str, package: str) -> str:
    """The first of `names` on PATH; a missing one fails under CI (`make test` installs it), else skips."""
    found = next((shutil.which(n) for n in names if shutil.which(n)), None)
    if not found:
        if os.environ.get("CI"):
            pytest.fail(f"{names[0]} is missing: `make test` installs it (apt-get install {package})")
        pytest.skip(f"no {names[0]} on this machine (`make test` installs it: apt-get install {package})")
    return found


def chromium() -> str:
    """Headless Chromium from the system packages."""
    return system_binary("chromium", "chromium-browser", "google-chrome", package="chromium")
