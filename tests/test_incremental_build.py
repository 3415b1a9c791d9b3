"""Builds whose cost follows the change: an incremental build equals a from-scratch build of the same lake,
a build with nothing new restates nothing, and a backlog larger than one pass is worked off in passes."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter

import duckdb
import pytest
from conftest import ledger_table, physical_table
from sqlglot import exp
from sqlmesh.core.engine_adapter import EngineAdapter

import circuitlake
from circuitlake import duck, project, registry, search
from circuitlake.app.build import build
from circuitlake.app.sample import SampleSpec, write_graphs
from circuitlake.ingest.graphs import ingest_graphs
from circuitlake.ingest.labels import ingest_labels
from circuitlake.jobs import search_index
from circuitlake.settings import warehouse

# every column users read (partials_seq is bookkeeping and differs by construction), and the partials summed
# by key (passes group the batches of an incremental build and of a from-scratch one differently)
TABLES = {
    "edges": "select atlas, method, src_layer, src_neuron, tgt_layer, tgt_neuron, count, weight_sum, weight_abs_sum, "
    "weight_sq_sum, weight_min, weight_max, mean_weight, mean_abs_weight from edges",
    "edges_by_target": "select atlas, method, tgt_layer, tgt_neuron, src_layer, src_neuron, count, mean_weight from edges_by_target",
    "neuron_graphs": "select atlas, batch, graph_key, layer, neuron, max_abs_influence, positions from neuron_graphs",
    "neurons": "select atlas, layer, neuron, feature_id, appearance_count, label from neurons",
    "stg.edge_partials": "select atlas, src_layer, src_neuron, tgt_layer, tgt_neuron, sum(count), sum(weight_sum) "
    "from stg.edge_partials group by all",
}


def snapshot(wh) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(wh.duckdb), read_only=True)
    try:
        return {t: con.execute(f"{query} order by all").fetchall() for t, query in TABLES.items()}
    finally:
        con.close()


def test_incremental_equals_from_scratch_and_noop_does_nothing(wh, tmp_path, monkeypatch):
    registry.add(wh, registry.AtlasRecord(atlas="inc", model_id="test/8x512", num_layers=8, neurons_per_layer=512))
    files = write_graphs(SampleSpec(graphs=90, min_nodes=20, max_nodes=40, seed=11), tmp_path / "c")
    # 70 one-graph batches: more than one 64-batch pass of the append models
    ingest_graphs(wh, "inc", [str(f) for f in files[:70]], batch_graphs=1, show_progress=False)
    build(wh, cluster=False)
    ingest_graphs(wh, "inc", [str(f) for f in files[70:80]], batch_graphs=4, show_progress=False)
    inserts = count_inserts(monkeypatch)
    restated = {fqn.split(".")[-1].strip('"') for fqn in build(wh, cluster=False)}
    # models reading the graph tables are restated; the labels, untouched, are not
    assert {"edge_partials", "neuron_graphs"} <= restated and "neuron_labels" not in restated
    # the 3 new batches are one pass: each append model runs its query once (no empty pass to find it is done)
    assert inserts["edge_partials"] == inserts["neuron_graphs"] == 1
    ingest_graphs(wh, "inc", [str(f) for f in files[80:]], show_progress=False)
    build(wh, cluster=False)
    incremental = snapshot(wh)
    assert (
        len(incremental["edges"]) > 0
        and len(incremental["edges_by_target"]) == len(incremental["edges"])
        and len({r[1] for r in incremental["neuron_graphs"]}) == 70 + 3 + 1
    )

    # the ledgers of the append models hold the (atlas, batch, pass) of every graph batch: neuron_graphs' the
    # rows of its table; edge_partials', whose passes aggregate their batches together, each pass's batches
    # (its rows labelled with the newest)
    con = duckdb.connect(str(wh.duckdb), read_only=True)
    try:
        ledgers = {"stg.edge_partials": ledger_table(con, "stg__edge_partials"), "neuron_graphs": ledger_table(con, "main__neuron_graphs")}
        held = con.execute(f"select atlas, batch, seq from {ledgers['neuron_graphs']} order by all").fetchall()
        assert held == con.execute("select distinct atlas, batch, seq from neuron_graphs order by all").fetchall()
        assert len(held) == 70 + 3 + 1  # every batch, in more than one pass
        partials = con.execute(f"select atlas, batch, seq from {ledgers['stg.edge_partials']} order by all").fetchall()
        assert [r[:2] for r in partials] == [r[:2] for r in held]
        newest = f"select atlas, max(batch), seq from {ledgers['stg.edge_partials']} group by atlas, seq order by all"
        labelled = "select distinct atlas, batch, seq from stg.edge_partials order by all"
        assert con.execute(newest).fetchall() == con.execute(labelled).fetchall()
        assert len({r[2] for r in partials}) == 4  # passes: 64 + 6 batches, then 3, then 1
        # each neuron_graphs pass is stored sorted by neuron (its order_by): a lookup reads a narrow range per pass
        table = physical_table(con, "main__neuron_graphs")
        stored = con.execute(f"select seq, atlas, layer, neuron from {table} order by rowid").fetchall()
        assert stored == sorted(stored)
    finally:
        con.close()

    # a build with nothing new restates no model and changes no row
    assert build(wh, cluster=False) == []
    assert snapshot(wh) == incremental

    # the same lake built once, from scratch, in another warehouse, its edges merged in several buckets
    scratch = warehouse(tmp_path / "scratch")
    shutil.copytree(wh.lake, scratch.lake)
    partials = len(incremental["stg.edge_partials"])
    monkeypatch.setenv("CIRCUITLAKE_MERGE_ROWS", str(partials // 5))
    build(scratch, cluster=False)
    assert_same(snapshot(scratch), incremental)


def count_inserts(monkeypatch) -> Counter:
    """Appends into each model's table from now on, by model name (the ledgers' own inserts not counted)."""
    counts: Counter = Counter()
    real = EngineAdapter.insert_append

    def counted(self, table_name, *args, **kwargs):
        name = exp.to_table(str(table_name)).name  # a model's physical table: <schema>__<model>__<version>
        counts[name.split("__")[1] if name.count("__") == 2 else name] += 1
        return real(self, table_name, *args, **kwargs)

    monkeypatch.setattr(EngineAdapter, "insert_append", counted)
    return counts


def assert_same(a: dict[str, list[tuple]], b: dict[str, list[tuple]]) -> None:
    """Equal row for row; floating sums may differ in the last bits (partials are added in another order)."""
    assert a.keys() == b.keys()
    for table in a:
        assert len(a[table]) == len(b[table]), table
        for x, y in zip(a[table], b[table], strict=False):
            assert len(x) == len(y)
            for u, v in zip(x, y, strict=False):
                assert u == (pytest.approx(v, rel=1e-12, abs=1e-15) if isinstance(v, float) else v), (table, x, y)


def test_a_build_with_nothing_new_answers_without_loading_sqlmesh(wh, atlas, small_corpus, monkeypatch):
    ingest_graphs(wh, atlas, [str(small_corpus)], show_progress=False)
    build(wh)  # plans, clusters, indexes: then settled
    loads = []
    load = project.context
    monkeypatch.setattr(project, "context", lambda *a, **kw: loads.append(a) or load(*a, **kw))
    assert build(wh) == [] and loads == []  # nothing new: answered from the lake's versions and the project's fingerprint
    registry.add(wh, registry.get(wh, atlas))  # registered again as it is: no lake commit
    assert build(wh) == [] and loads == []

    index = next((wh.root / "search").glob(f"{search.slug(atlas)}-*"))
    shutil.rmtree(index)
    build(wh)
    assert loads == [] and index.exists()  # a missing search index is rebuilt, still without a plan

    state = wh.state.stat()
    os.utime(wh.state, ns=(state.st_atime_ns, state.st_mtime_ns + 1))  # a plan applied meanwhile (`sqlmesh plan`)
    build(wh)
    assert len(loads) == 1
    with monkeypatch.context() as edited:
        edited.setattr(project, "fingerprint", lambda *a: "a model changed")
        build(wh)
    assert len(loads) == 2
    registry.add(wh, registry.AtlasRecord(atlas="other", model_id="m", num_layers=8, neurons_per_layer=512))  # a lake commit
    build(wh)
    assert build(wh) == [] and len(loads) == 3  # the commit plans once, then the warehouse is settled again


def test_a_moved_warehouse_reads_its_own_lake_after_a_build(wh, atlas, small_corpus, tmp_path):
    """The models find the lake through the engine (macros/lake.py), so a loaded project is the same for
    every warehouse; a warehouse moved since its last build has its lake views created again over its lake."""
    ingest_graphs(wh, atlas, [str(small_corpus)], show_progress=False)
    build(wh, cluster=False)
    before = snapshot(wh)
    moved = warehouse(tmp_path / "moved")
    shutil.move(wh.root, moved.root)  # the old folder is gone: a view left over it would fail to read
    build(moved, cluster=False)
    con = duck.connect(moved)
    try:
        assert con.execute("select count(*) from lake.graphs").fetchone()[0] == len(list(small_corpus.iterdir()))
    finally:
        con.close()
    assert snapshot(moved) == before


def test_search_indexes_are_looked_at_only_when_labels_can_have_moved(wh, atlas, small_corpus, tmp_path, monkeypatch):
    """A build after graphs of a grid atlas skips the indexes' fingerprints (a scan of every label); a
    label ingest, or an index built with other settings, re-indexes."""
    ingest_graphs(wh, atlas, [str(small_corpus)], show_progress=False)
    build(wh, cluster=False)
    refreshed = []
    refresh = search_index.refresh
    monkeypatch.setattr(search_index, "refresh", lambda w: refreshed.append(1) or refresh(w))
    write_graphs(SampleSpec(graphs=3, seed=7, layers=8, neurons_per_layer=512), tmp_path / "more")
    ingest_graphs(wh, atlas, [str(tmp_path / "more" / "graphs")], show_progress=False)
    assert build(wh, cluster=False) and refreshed == []
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"L0/N5": {"label": "aspirin dosage", "short_label": None}}))
    ingest_labels(wh, atlas, labels, show_progress=False)
    build(wh, cluster=False)
    assert len(refreshed) == 1
    with circuitlake.open(wh.root, atlas) as opened:
        assert [r[:2] for r in opened.search("aspirin").fetchall()] == [(0, 5)]
    monkeypatch.setattr(search, "FTS_SETTINGS", search.FTS_SETTINGS + "/other")
    assert not search_index.on_disk(wh)  # built with other settings: the next build re-indexes
