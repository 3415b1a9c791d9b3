"""Clustering: Infomap recovers the sample's planted circuits, deterministically, as a no-op when nothing
changed, flagged stale after new graphs, and an atlas without edges gets an empty clusters table."""

from __future__ import annotations

import math
import os
from collections import Counter

import duckdb
import pytest

from circuitlake import lake, registry
from circuitlake.app.build import build
from circuitlake.app.report import run_audits
from circuitlake.app.sample import SampleSpec, planted_groups, write_graphs
from circuitlake.ingest.graphs import ingest_graphs
from circuitlake.jobs.cluster import cluster, latest_run
from circuitlake.settings import warehouse

SPEC = SampleSpec(graphs=120, min_nodes=100, max_nodes=160, seed=2)


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    root = tmp_path_factory.mktemp("clusters")
    wh = warehouse(root / "warehouse")
    mp = pytest.MonkeyPatch()
    mp.setenv("CIRCUITLAKE_WAREHOUSE", str(wh.root))
    lake.ensure(wh)
    registry.add(wh, registry.AtlasRecord(atlas="planted", model_id="test/8x512", num_layers=8, neurons_per_layer=512))
    registry.add(wh, registry.AtlasRecord(atlas="empty", model_id="test/8x512", num_layers=8, neurons_per_layer=512))
    files = write_graphs(SPEC, root / "corpus")
    ingest_graphs(wh, "planted", [str(f) for f in files[:100]], show_progress=False)
    build(wh)
    yield wh, files
    mp.undo()


def normalized_mutual_information(a: list, b: list) -> float:
    """NMI = 2 I(A;B) / (H(A) + H(B)) of two labelings of the same items."""
    n = len(a)
    ca, cb, cab = Counter(a), Counter(b), Counter(zip(a, b, strict=False))
    mutual = sum(c / n * math.log(c * n / (ca[x] * cb[y])) for (x, y), c in cab.items())
    entropy = lambda counts: -sum(c / n * math.log(c / n) for c in counts.values())  # noqa: E731
    return 2 * mutual / (entropy(ca) + entropy(cb))


def query(wh, sql, *params):
    con = duckdb.connect(str(wh.duckdb), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_build_clusters_and_recovers_planted_circuits(clustered):
    wh, _ = clustered
    top = dict(
        ((layer, n), c)
        for layer, n, c in query(wh, "select layer, neuron, top_cluster from neurons where atlas = 'planted' and top_cluster is not null")
    )
    purities, dominant = [], []
    for members in planted_groups(SPEC):
        clusters = Counter(top[m] for m in members if m in top)
        assert sum(clusters.values()) >= 8, "planted members take part in the clustering"
        module, hits = clusters.most_common(1)[0]
        purities.append(hits / len(members))
        dominant.append(module)
    planted = [(g, top[m]) for g, members in enumerate(planted_groups(SPEC)) for m in members if m in top]
    score = normalized_mutual_information([g for g, _ in planted], [c for _, c in planted])
    print(f"purity {sum(purities) / len(purities):.3f}, distinct {len(set(dominant))}/{len(dominant)}, NMI {score:.3f}")
    # stated bounds: on average at least 90% of a planted circuit lands in one top module, and the top
    # modules carry most of the planted grouping (NMI >= 0.8; several circuits may share a top module)
    assert sum(purities) / len(purities) >= 0.9
    assert score >= 0.8
    assert run_audits(wh).passed


def test_empty_atlas_gets_empty_clusters_not_an_error(clustered):
    wh, _ = clustered
    assert latest_run(wh, "empty") is None
    assert query(wh, "select count(*) from clusters where atlas = 'empty'") == [(0,)]
    assert query(wh, "select count(*) from neurons where atlas = 'empty' and cluster_path is not null") == [(0,)]


def test_same_edges_and_settings_is_a_noop_and_a_forced_rerun_is_identical(clustered):
    wh, _ = clustered
    first = latest_run(wh, "planted")
    assert cluster(wh, "planted") is None
    assert latest_run(wh, "planted")["batch"] == first["batch"]
    second = cluster(wh, "planted", force=True)
    assert second["batch"] != first["batch"] and second["edges_hash"] == first["edges_hash"]
    runs = {}
    for run in (first, second):
        t = lake.read(wh, "cluster_assignments", filters=[("atlas", "=", "planted"), ("batch", "=", run["batch"])])
        runs[run["batch"]] = sorted(
            zip(t["layer"].to_pylist(), t["neuron"].to_pylist(), t["cluster_path"].to_pylist(), t["flow"].to_pylist(), strict=False)
        )
    assert runs[first["batch"]] == runs[second["batch"]]
    assert second["codelength"] == first["codelength"]


def test_new_graphs_flag_clusters_stale_until_reclustered_explicitly(clustered):
    wh, files = clustered
    before = latest_run(wh, "planted")["batch"]
    ingest_graphs(wh, "planted", [str(f) for f in files[100:]], show_progress=False)
    build(wh)
    assert latest_run(wh, "planted")["batch"] == before  # builds do not re-cluster after new data
    assert query(wh, "select value from metadata where atlas = 'planted' and key = 'clusters_stale'") == [("true",)]
    assert cluster(wh, "planted") is not None
    from circuitlake.app.build import refresh_clusters

    refresh_clusters(wh)
    assert query(wh, "select value from metadata where atlas = 'planted' and key = 'clusters_stale'") == [("false",)]
    report = run_audits(wh)
    assert report.passed
    figures = {f["figure"]: f["value"] for f in report.figures if f["atlas"] == "planted"}
    assert f"seed 42, 20 trials, {os.cpu_count()} thread(s)" in figures["clusters"] and "count >= 5" in figures["clusters"]


def test_settings_change_makes_build_recluster(clustered):
    wh, _ = clustered
    before = latest_run(wh, "planted")
    atlas = registry.get(wh, "planted")
    atlas.settings.cluster.trials = 3
    registry.add(wh, atlas)
    build(wh)
    after = latest_run(wh, "planted")
    assert after["batch"] != before["batch"] and '"trials":3' in after["settings"]


def test_build_announces_a_long_first_clustering_instead_of_running_it(wh, tmp_path, monkeypatch, capsys):
    from circuitlake.app import build as build_module
    from circuitlake.jobs.cluster import estimate

    registry.add(wh, registry.AtlasRecord(atlas="big", model_id="test/8x512", num_layers=8, neurons_per_layer=512))
    ingest_graphs(wh, "big", [str(f) for f in write_graphs(SPEC, tmp_path / "c")[:40]], show_progress=False)
    monkeypatch.setattr(build_module, "AUTO_CLUSTER_SECONDS", 0.0)  # every clustering counts as long
    build(wh)
    links, seconds = estimate(wh, registry.get(wh, "big"))
    assert links > 0 and seconds > 0
    assert latest_run(wh, "big") is None  # not clustered by build
    out = capsys.readouterr().err
    assert "big is not clustered yet" in out and f"{links:,} links" in out and "circuitlake cluster --atlas big" in out
    assert cluster(wh, "big") is not None  # the announced step works
