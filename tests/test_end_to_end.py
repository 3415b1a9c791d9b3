"""End to end on a temporary warehouse: ingest -> SQLMesh build -> edges checked against an
independent Python recomputation from the raw JSON, incrementally, then the audit report."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest
from conftest import physical_table

from circuitlake import registry
from circuitlake.app.build import build
from circuitlake.app.report import run_audits
from circuitlake.app.sample import SampleSpec, write_graphs
from circuitlake.ingest.graphs import ingest_graphs
from circuitlake.settings import REPO_ROOT

NEURON_ID = re.compile(r"^(\d+)_(\d+)_\d+$")


def load(path: Path) -> dict:
    data = path.read_bytes()
    return json.loads(gzip.decompress(data) if path.suffix == ".gz" else data)


def research_aggregate(files: list[Path]):
    """The research pipeline's way: json.load each file, a dict keyed by edge of [count, sum, abs, sq, min, max]."""
    edges: dict[tuple, list] = {}
    appearances: dict[tuple, int] = defaultdict(int)
    for f in files:
        g = load(f)
        for link in g["links"]:
            s, t = NEURON_ID.match(link["source"]), NEURON_ID.match(link["target"])
            if s and t:
                key = (int(s[1]), int(s[2]), int(t[1]), int(t[2]))
                w = link["weight"]
                e = edges.setdefault(key, [0, 0.0, 0.0, 0.0, w, w])
                e[0] += 1
                e[1] += w
                e[2] += abs(w)
                e[3] += w * w
                e[4] = min(e[4], w)
                e[5] = max(e[5], w)
        for layer, neuron in {(int(n["layer"]), n["feature"]) for n in g["nodes"] if n["feature_type"] == "mlp_neuron"}:
            appearances[(layer, neuron)] += 1
    return edges, appearances


def published(wh, atlas):
    con = duckdb.connect(str(wh.duckdb), read_only=True)
    try:
        rows = con.execute(
            """select src_layer, src_neuron, tgt_layer, tgt_neuron, count, weight_sum, weight_abs_sum,
                                     weight_sq_sum, weight_min, weight_max, mean_weight, method
                              from edges where atlas = ?""",
            [atlas],
        ).fetchall()
        neurons = dict(
            ((layer, n), c)
            for layer, n, c in con.execute("select layer, neuron, appearance_count from neurons where atlas = ?", [atlas]).fetchall()
        )
        partial_dupes = con.execute("""select count(*) - count(distinct (atlas, seq, src_layer, src_neuron, tgt_layer, tgt_neuron))
                                       from stg.edge_partials""").fetchone()[0]
    finally:
        con.close()
    return {r[:4]: r[4:] for r in rows}, neurons, partial_dupes


def assert_matches_research(wh, atlas, files):
    expected, appearances = research_aggregate(files)
    edges, neurons, partial_dupes = published(wh, atlas)
    kept = {k: v for k, v in expected.items() if v[0] >= 3}
    assert 0 < len(kept) < len(expected)  # the count >= 3 filter bites
    assert set(edges) == set(kept)
    for key, (count, s, a, q, lo, hi, mean, method) in edges.items():
        e = kept[key]
        assert count == e[0] and method == "relp"
        assert (s, a, q, lo, hi) == pytest.approx(tuple(e[1:]), rel=1e-9, abs=1e-12)
        assert mean == pytest.approx(e[1] / e[0], rel=1e-9, abs=1e-12)
    assert partial_dupes == 0
    assert {k: v for k, v in neurons.items() if v} == dict(appearances)


def test_ingest_build_matches_research_aggregation_incrementally(wh, tmp_path):
    spec = SampleSpec(graphs=40, min_nodes=80, max_nodes=150, seed=5)
    registry.add(wh, registry.AtlasRecord(atlas="e2e", model_id="test/8x512", num_layers=8, neurons_per_layer=512))
    files = write_graphs(spec, tmp_path / "c1")
    first, later, last = files[:20], files[20:30], files[30:]
    ingest_graphs(wh, "e2e", [str(f) for f in first], batch_graphs=10, show_progress=False)
    build(wh)
    assert_matches_research(wh, "e2e", first)

    # new graphs land in a new batch; the documented sqlmesh command, run in the repo root, brings them in
    ingest_graphs(wh, "e2e", [str(f) for f in later], show_progress=False)
    env = {**os.environ, "CIRCUITLAKE_WAREHOUSE": str(wh.root)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "sqlmesh"), "plan", "--auto-apply", "--no-prompts", "--restate-model", "tag:reads_lake"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert_matches_research(wh, "e2e", files[:30])

    # and `circuitlake build` does the same on the next batch
    ingest_graphs(wh, "e2e", [str(f) for f in last], show_progress=False)
    assert {'"circuitlake"."main"."neuron_graphs"', '"circuitlake"."stg"."edge_partials"'} <= set(build(wh))
    assert_matches_research(wh, "e2e", files)

    report = run_audits(wh)
    assert report.passed, [a for a in report.audits if not a.passed]
    names = {a.name for a in report.audits}
    assert {(a.name, a.model) for a in report.audits if a.name == "unique_combination_of_columns"} == {
        ("unique_combination_of_columns", "main.edges"),
        ("unique_combination_of_columns", "main.neurons"),
        ("unique_combination_of_columns", "main.clusters"),
    }
    assert {
        "edges_below_threshold",
        "edges_layer_order",
        "edges_mean_within_range",
        "edges_mean_abs_bounds",
        "edges_statistics_are_finite",
        "edges_endpoints_are_neurons",
        "neurons_inside_shape",
        "neurons_feature_id_formula",
        "metadata_has_keys",
    } <= names
    figures = {(f["atlas"], f["figure"]): f["value"] for f in report.figures}
    assert figures[("e2e", "graphs")] == 40
    md = report.to_markdown()
    assert "| edges_below_threshold | main.edges | pass | 0 | yes |" in md
    assert json.loads(report.to_json())["passed"] is True

    # metadata records provenance
    con = duckdb.connect(str(wh.duckdb), read_only=True)
    meta = dict(con.execute("select key, value from metadata where atlas = 'e2e'").fetchall())
    con.close()
    assert meta["graphs"] == "40" and meta["model_id"] == "test/8x512" and meta["relp_min_count"] == "3"
    assert len(meta["lake_hash"]) == 64

    # an edge below the threshold makes its audit fail, with the failing-row count
    con = duckdb.connect(str(wh.duckdb))
    table = physical_table(con, "main__edges")
    con.execute(f"insert into {table} select atlas, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 'relp', null from {table} limit 1")
    # and so does an edge whose sums a NaN weight poisoned
    con.execute(
        f"insert into {table} select atlas, 0, 1, 1, 2, 5, 'nan'::double, 1, 1, 1, 1, 'nan'::double, 1, 'relp', null from {table} limit 1"
    )
    con.close()
    failing = {a.name: a for a in run_audits(wh).audits}
    assert not failing["edges_below_threshold"].passed and failing["edges_below_threshold"].failing_rows == 1
    assert not failing["edges_statistics_are_finite"].passed and failing["edges_statistics_are_finite"].failing_rows == 1


def test_new_batches_never_reread_old_raw_links(wh, tmp_path):
    """Partials of earlier batches are carried over: even with their raw links gone, edges keep them."""
    registry.add(wh, registry.AtlasRecord(atlas="inc", model_id="test/8x512", num_layers=8, neurons_per_layer=512))
    files = write_graphs(SampleSpec(graphs=12, min_nodes=60, max_nodes=100, seed=9), tmp_path / "c")
    ingest_graphs(wh, "inc", [str(f) for f in files[:8]], show_progress=False)
    build(wh, cluster=False)
    from circuitlake import lake

    lake.delete(wh, "graph_links", "atlas = 'inc'")  # the raw links of the first batch are gone
    ingest_graphs(wh, "inc", [str(f) for f in files[8:]], show_progress=False)
    build(wh, cluster=False)
    assert_matches_research(wh, "inc", files)  # still counts the first batch: it was not re-read
