"""Other tools read what circuitlake writes: the lake with polars, pandas (deltalake) and DuckDB's delta_scan,
the warehouse with a plain DuckDB session that has no extension at all."""

from __future__ import annotations

import duckdb
import polars as pl
from deltalake import DeltaTable

from circuitlake import duck, lake

PUBLISHED = {"neurons", "edges", "edges_by_target", "clusters", "metadata", "neuron_graphs"}
PUBLISHED |= {"graph_index", "labels_by_neuron", "projections_by_neuron", "module_edges"}  # what the explorer reads


def test_lake_tables_read_with_polars_pandas_and_delta_scan(demo_wh):
    con = duck.load(duck.connect(demo_wh, read_only=True), "delta")
    for name in ("graphs", "graph_links", "labels", "wiring", "cluster_assignments"):
        path = str(demo_wh.table(name))
        expected = con.execute(f"select count(*) from lake.{name} where atlas = 'sample'").fetchone()[0]
        assert expected > 0, name
        frame = pl.read_delta(path).filter(pl.col("atlas") == "sample")
        pandas = DeltaTable(path).to_pandas(filters=[("atlas", "=", "sample")])
        plain = duckdb.connect()
        duck.load(plain, "delta")
        scanned = plain.execute(f"select count(*) from delta_scan('{path}') where atlas = 'sample'").fetchone()[0]
        # every reader sees the same rows: no batch is half-written after a clean run
        assert frame.height == len(pandas) == scanned == expected, name
    assert set(pl.read_delta(str(demo_wh.table("graph_links"))).columns) == set(lake.TABLES["graph_links"].schema.names)
    con.close()


def test_plain_duckdb_without_extensions_queries_every_published_table(demo_wh):
    config = {"autoload_known_extensions": False, "autoinstall_known_extensions": False}
    db = duckdb.connect(str(demo_wh.duckdb), read_only=True, config=config)
    tables = {r[0] for r in db.execute("select table_name from information_schema.tables where table_schema = 'main'").fetchall()}
    assert tables == PUBLISHED
    for table in sorted(tables):
        assert db.execute(f"select count(*) from {table}").fetchone()[0] > 0, table
    assert db.execute("select count(*) from neurons n join edges e on n.layer = e.src_layer and n.neuron = e.src_neuron").fetchone()[0] > 0
    atlases = db.execute("select count(distinct atlas) from neurons").fetchone()[0]
    assert db.execute("select count(*) from search.indexes where kind = 'fts'").fetchone()[0] == atlases  # the search record too
    db.close()
