"""Retraction: after `retract` and a build, the warehouse equals a from-scratch build of a lake that never
held the retracted data; other atlases are untouched; a dry run and a refused selection change nothing."""

from __future__ import annotations

import shutil

import duckdb
import pytest
from test_incremental_build import assert_same

from circuitlake import lake, registry
from circuitlake.app.build import build
from circuitlake.app.sample import SampleSpec, write_graphs, write_labels
from circuitlake.errors import UserError
from circuitlake.ingest.graphs import ingest_graphs
from circuitlake.ingest.labels import ingest_labels
from circuitlake.jobs.retract import retract, select
from circuitlake.settings import warehouse

SPEC = SampleSpec(graphs=30, min_nodes=20, max_nodes=40, seed=5)
# what users read, without batch ids (a from-scratch ingest of the same files batches them differently)
USER_TABLES = {
    "edges": "atlas, method, src_layer, src_neuron, tgt_layer, tgt_neuron, count, weight_sum, weight_abs_sum, "
    "weight_sq_sum, weight_min, weight_max, mean_weight, mean_abs_weight",
    "edges_by_target": "atlas, method, tgt_layer, tgt_neuron, src_layer, src_neuron, count, mean_weight",
    "neuron_graphs": "atlas, graph_key, layer, neuron, max_abs_influence, positions",
    "neurons": "atlas, layer, neuron, feature_id, appearance_count, label, output_label",
    "metadata": "atlas, key, value",
}


VARYING_METADATA = "('build_time', 'last_ingest', 'lake_hash', 'graphs_hash', 'ingest_batches')"


def snapshot(wh) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(wh.duckdb), read_only=True)
    try:
        # times, and what depends on how graphs were batched, differ from an ingest of the same files
        return {
            t: con.execute(
                f"select {cols} from {t} where key not in {VARYING_METADATA} order by all"
                if t == "metadata"
                else f"select {cols} from {t} order by all"
            ).fetchall()
            for t, cols in USER_TABLES.items()
        }
    finally:
        con.close()


def land(wh, graphs, others, labels=()) -> None:
    for name in ("ret", "other"):
        registry.add(wh, registry.AtlasRecord(atlas=name, model_id="test/8x512", num_layers=8, neurons_per_layer=512))
    ingest_graphs(wh, "ret", [str(f) for f in graphs], batch_graphs=4, show_progress=False)
    ingest_graphs(wh, "other", [str(f) for f in others], batch_graphs=5, show_progress=False)
    for f in labels:
        ingest_labels(wh, "ret", f)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("retract")
    return sorted(write_graphs(SPEC, out)), write_labels(SPEC, out)


def test_retracted_build_equals_a_build_without_the_data(wh, tmp_path, corpus):
    graphs, labels = corpus
    land(wh, graphs, graphs[:10], labels)
    build(wh, cluster=False)
    before = snapshot(wh)
    batches = lake.read(wh, "ingest_batches", filters=[("atlas", "=", "ret"), ("job", "=", "graphs")]).to_pylist()
    first = min(batches, key=lambda b: b["batch"])  # graphs[0:4]
    label_source = lake.read(wh, "ingest_batches", filters=[("atlas", "=", "ret"), ("job", "=", "labels")])["source"][0].as_py()

    # a dry-run selection changes nothing; a request naming nothing is refused
    dry = select(wh, "ret", files=[str(graphs[5])])
    assert [s[3:] for s in dry.summary()] == [(4, 3)]  # graphs[4:8]'s batch: 4 landed, 3 stay
    with pytest.raises(UserError, match="no committed batch"):
        select(wh, "ret", batches=["graphs-nope"])
    with pytest.raises(UserError, match="exactly one"):
        select(wh, "ret")
    assert build(wh, cluster=False) == []

    retract(wh, "ret", select(wh, "ret", batches=[first["batch"]]))
    retract(wh, "ret", dry)
    retract(wh, "ret", select(wh, "ret", source=label_source))
    restated = build(wh, cluster=False)
    assert restated and snapshot(wh) != before
    after = snapshot(wh)
    # the other atlas is exactly as it was
    for table, rows in after.items():
        assert [r for r in rows if r[0] == "other"] == [r for r in before[table] if r[0] == "other"], table

    # the same lake built from scratch
    scratch = warehouse(tmp_path / "scratch")
    shutil.copytree(wh.lake, scratch.lake)
    build(scratch, cluster=False)
    assert_same(snapshot(scratch), after)

    # and a lake that never held the data: every graph but graphs[0:4] and graphs[5], the other label files
    clean = warehouse(tmp_path / "clean")
    lake.ensure(clean)
    kept = [g for i, g in enumerate(graphs) if i >= 4 and i != 5]
    land(clean, kept, graphs[:10], [f for f in labels if f.stem != label_source])
    build(clean, cluster=False)
    assert_same(snapshot(clean), after)
    # the survivors of graphs[4:8]'s batch landed again; a re-ingest of all files lands exactly the retracted ones
    report = ingest_graphs(wh, "ret", [str(f) for f in graphs], batch_graphs=4, show_progress=False)
    assert report.landed == 5 and report.skipped == len(graphs) - 5


def test_retract_all_then_reingest_restores_the_atlas(wh, corpus):
    graphs, _ = corpus
    land(wh, graphs[:8], graphs[:10])
    build(wh, cluster=False)
    before = snapshot(wh)
    retract(wh, "ret", select(wh, "ret", everything=True))
    build(wh, cluster=False)
    gone = snapshot(wh)
    assert not [r for r in gone["edges"] if r[0] == "ret"] and [r for r in gone["edges"] if r[0] == "other"]
    ingest_graphs(wh, "ret", [str(f) for f in graphs[:8]], batch_graphs=4, show_progress=False)
    build(wh, cluster=False)
    assert_same(snapshot(wh), before)
