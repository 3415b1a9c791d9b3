"""The `spark` gateway (`make test-spark`): the session's demo atlas built on a local Spark session
(local[2]) from the same lake as the DuckDB build equals it row for row, with every audit passing there;
a later graph batch and a new transcoder atlas reach both through `circuitlake build`, on Spark through
the same incremental path. It runs after the demo atlas's other readers (tests/conftest.py): it adds to
that lake."""

from __future__ import annotations

import math

import duckdb
import pandas as pd
import pytest

from circuitlake import project
from circuitlake.app.build import build
from circuitlake.app.demo import add_transcoder_atlas
from circuitlake.app.sample import SAMPLE_ATLAS, SampleSpec, write_graphs
from circuitlake.app.sample_transcoder import TRANSCODER_ATLAS
from circuitlake.ingest.graphs import ingest_graphs

pytestmark = pytest.mark.spark

MORE = SampleSpec(graphs=12, min_nodes=80, max_nodes=140, seed=6)  # the second batch
KEYS = {
    "neurons": ("atlas", "layer", "neuron"),
    "edges": ("atlas", "method", "src_layer", "src_neuron", "tgt_layer", "tgt_neuron"),
    "clusters": ("atlas", "cluster_path"),
    "labels_by_neuron": ("atlas", "layer", "neuron", "source", "pass", "batch", "record"),
    "projections_by_neuron": ("atlas", "layer", "neuron", "kind", "rank"),
    "graph_index": ("atlas", "graph_key"),
    "module_edges": ("atlas", "cluster_path", "method", "strength_rank"),
}


def _value(v):
    """One cell, comparable across engines and their pandas types: None, NaN and NA as None, numbers
    as floats to 10 significant digits (sums may add in another order)."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    v = v.item() if hasattr(v, "item") else v
    return float(f"{v:.10g}") if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def _rows(df, table: str) -> list[tuple]:
    df = df.sort_values(list(KEYS[table])).reset_index(drop=True)
    return [tuple(_value(v) for v in row) for row in df.itertuples(index=False)]


def _duckdb(wh, table: str):
    con = duckdb.connect(str(wh.duckdb), read_only=True)
    try:
        return con.execute(f"select * from {table}").df()
    finally:
        con.close()


def _spark(wh) -> dict:
    """Every compared table from the Spark build, through one SQLMesh context (a context loads the project)."""
    ctx = project.context(wh, "spark")
    try:
        return {table: ctx.engine_adapter.fetchdf(f"select * from main.{table}") for table in KEYS}
    finally:
        ctx.close()


def _assert_same_build(wh) -> None:
    built = _spark(wh)
    for table in KEYS:
        local, spark = _duckdb(wh, table), built[table]
        assert list(spark.columns) == list(local.columns), table
        assert len(local) > 0, table
        assert _rows(spark, table) == _rows(local, table), f"{table}: the Spark build differs from the DuckDB build"


SMALL_SPARK = {
    "CIRCUITLAKE_SPARK_SHUFFLE_PARTITIONS": "2",  # tiny data on local[2]: a shuffle partition per core
    # the JIT's quick tier only, one compiler thread, serial GC: the JVM then burns 30% less CPU on this test
    # (166 against 238 CPU-seconds measured, 120 against 145 s), which the rest of `make test` gets instead;
    # room for all the code that tier compiles: in the default 48 MB it filled up 26-43 s in and the JVM ran
    # the rest interpreted ("CodeCache is full. Compiler has been disabled"; 110 against 101 s measured)
    "CIRCUITLAKE_SPARK_JAVA_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:CICompilerCount=1 -XX:+UseSerialGC -XX:ReservedCodeCacheSize=256m",
}


@pytest.fixture
def wh(demo_wh, monkeypatch):
    """The session's demo atlas (ingested, built, clustered and audited on DuckDB), with the JVM settings
    for tiny data; the Spark session is stopped afterwards (the worker's next tests run without its
    threads and memory)."""
    for name, value in SMALL_SPARK.items():
        monkeypatch.setenv(name, value)
    yield demo_wh
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()


def _graphs(wh, atlas: str) -> int:
    return int(_duckdb(wh, "metadata").query(f"key == 'graphs' and atlas == '{atlas}'")["value"].item())


def test_spark_build_equals_duckdb_build_and_follows_new_batches(wh, tmp_path):
    before = _graphs(wh, SAMPLE_ATLAS)
    build(wh, gateway="spark")  # every model and audit on Spark; a failing audit fails the plan
    _assert_same_build(wh)
    clustered = _duckdb(wh, "neurons")["top_cluster"].notna().sum()
    assert clustered > 0  # the clustering run (a lake table) reached both builds

    write_graphs(MORE, tmp_path)
    ingest_graphs(wh, SAMPLE_ATLAS, [str(tmp_path / "graphs")], workers=1)
    add_transcoder_atlas(wh, tmp_path / "transcoder")  # a second atlas: transcoder features, Neuronpedia labels
    build(wh)
    stale = build(wh, gateway="spark")  # only what reads the moved lake tables, the lake views over them first
    assert "lake.graph_links" in {s.split(".", 1)[-1].replace('"', "") for s in stale}
    _assert_same_build(wh)
    assert _graphs(wh, SAMPLE_ATLAS) == before + MORE.graphs
    assert _graphs(wh, TRANSCODER_ATLAS) > 0
