"""Wiring from weights against a brute-force dense computation for three model families, the cache
ingest and the computed path landing identical tables, and a weight-graph atlas through the build."""

from __future__ import annotations

import json

import duckdb
import pytest
import torch

from circuitlake import lake, registry
from circuitlake.app.build import build
from circuitlake.app.report import run_audits
from circuitlake.app.sample import SampleSpec, write_wiring
from circuitlake.ingest.wiring import ingest_wiring
from circuitlake.ingest.wiring_compute import Checkpoint, compute_layer, compute_wiring, tiny_model

LAYERS, NPL, K = 4, 48, 5


@pytest.fixture(scope="module", params=["llama", "qwen3", "olmo3"])
def checkpoint(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    tiny_model(request.param, LAYERS, NPL, hidden=32, vocab=97, seed=1).save_pretrained(folder)
    return Checkpoint(folder)


def dense_expected(ckpt: Checkpoint, layer: int):
    """Every candidate of every neuron of `layer`, in float64, sorted: the brute-force reference."""
    w = {(i, k): ckpt.mlp(i, k, torch.float64, "cpu") for i in range(LAYERS) for k in ("up_proj", "gate_proj", "down_proj")}
    out = {}
    for direction in ("upstream", "downstream"):
        for n in range(NPL):
            cands = []
            others = range(layer) if direction == "upstream" else range(layer + 1, LAYERS)
            for o in others:
                if direction == "upstream":
                    cu, cg = w[layer, "up_proj"][n] @ w[o, "down_proj"], w[layer, "gate_proj"][n] @ w[o, "down_proj"]
                else:
                    cu, cg = w[o, "up_proj"] @ w[layer, "down_proj"][:, n], w[o, "gate_proj"] @ w[layer, "down_proj"][:, n]
                for j, (u, g) in enumerate(zip(cu.tolist(), cg.tolist(), strict=False)):
                    if (u > 0 and g > 0) or (u < 0 and g < 0):
                        cands.append((u + g, o, j, u, g))
            exc = sorted((c for c in cands if c[0] > 0), reverse=True)[:K]
            inh = sorted(c for c in cands if c[0] < 0)[:K]
            out[direction, n] = (exc, inh)
    logits = (ckpt.tensor(ckpt.unembedding, torch.float64, "cpu") @ w[layer, "down_proj"]).T
    return out, logits, torch.linalg.vector_norm(w[layer, "down_proj"], dim=0)


@pytest.mark.parametrize("layer", [0, 2, LAYERS - 1])
def test_computed_topk_and_projections_match_brute_force(checkpoint, layer):
    result = compute_layer(checkpoint, layer, K, torch.float32, "cpu", block_rows=7)  # blocks that do not divide 48
    expected, logits, norms = dense_expected(checkpoint, layer)
    for n, entry in enumerate(result.neurons):
        for direction in ("upstream", "downstream"):
            exc, inh = expected[direction, n]
            lists = getattr(entry, direction)
            for got, want, polarity in ((lists.excitatory, exc, "excitatory"), (lists.inhibitory, inh, "inhibitory")):
                assert [(c.layer, c.neuron) for c in got] == [(o, j) for _, o, j, _, _ in want]
                assert [c.effective_strength for c in got] == pytest.approx([s for s, *_ in want], rel=1e-4, abs=1e-7)
                assert [x for c in got for x in (c.c_up, c.c_gate)] == pytest.approx(
                    [x for *_, u, g in want for x in (u, g)], rel=1e-4, abs=1e-7
                )
                assert all(c.predicted_polarity == polarity for c in got)
                # effective_strength = +-(|c_up| + |c_gate|)
                assert all(abs(abs(c.effective_strength) - abs(c.c_up) - abs(c.c_gate)) < 1e-6 for c in got)
        promoted = torch.topk(logits[n], K).indices.tolist()
        suppressed = torch.topk(logits[n], K, largest=False).indices.tolist()
        assert [t.token_id for t in entry.projections.promotes] == promoted
        assert [t.token_id for t in entry.projections.suppresses] == suppressed
        assert [t.weight for t in entry.projections.promotes] == pytest.approx(logits[n][promoted].tolist(), rel=1e-4, abs=1e-7)
    assert result.output_norm == pytest.approx(norms.tolist(), rel=1e-5)
    if layer == 0:
        assert all(not e.upstream.excitatory and not e.upstream.inhibitory for e in result.neurons)


def table(wh, name, atlas):
    rows = lake.read(wh, name, filters=[("atlas", "=", atlas)]).drop_columns(["atlas", "batch", "source"]).to_pylist()
    return sorted(tuple(sorted(r.items())) for r in rows)


def test_cache_ingest_and_computed_path_land_identical_tables(wh, tmp_path):
    # the sample corpus's wiring as `circuitlake demo` writes it with torch: a tiny checkpoint and its computed cache
    write_wiring(SampleSpec(graphs=1, layers=LAYERS, neurons_per_layer=NPL, seed=2), tmp_path)
    folder, cache = tmp_path / "model", tmp_path / "wiring_cache"
    for name in ("computed", "cached"):
        registry.add(wh, registry.AtlasRecord(atlas=name, model_id="tiny", num_layers=LAYERS, neurons_per_layer=NPL, universe="observed"))
    computed = compute_wiring(wh, "computed", folder, show_progress=False)
    cached = ingest_wiring(wh, "cached", cache, show_progress=False)
    assert computed.landed == cached.landed == LAYERS
    assert table(wh, "wiring", "computed") == table(wh, "wiring", "cached")
    assert table(wh, "projections", "computed") == table(wh, "projections", "cached")
    # at most 10 per list; no upstream in layer 0, no downstream in the last layer (a list is shorter only
    # when fewer sign-agreeing candidates exist, e.g. layer 1 upstream has 48 candidates, a quarter of them both > 0)
    rows = lake.read(wh, "wiring", filters=[("atlas", "=", "cached")]).to_pylist()
    per_list = {}
    for r in rows:
        key = (r["layer"], r["neuron"], r["direction"], r["polarity"])
        per_list[key] = per_list.get(key, 0) + 1
    assert max(per_list.values()) == 10 and 0.9 * LAYERS * NPL * 40 * 3 / 4 < len(rows) <= LAYERS * NPL * 40 * 3 / 4
    assert not any(k[0] == 0 and k[2] == "upstream" or k[0] == LAYERS - 1 and k[2] == "downstream" for k in per_list)
    # resumable per layer: a second run computes nothing, a re-ingest lands nothing
    assert compute_wiring(wh, "computed", folder, show_progress=False).skipped == LAYERS
    assert ingest_wiring(wh, "cached", cache, show_progress=False).skipped == LAYERS


def test_weight_graph_atlas_builds_and_clusters_with_audits_passing(wh, tmp_path):
    folder = tmp_path / "model"
    tiny_model("qwen3", LAYERS, NPL, hidden=32, vocab=97, seed=3).save_pretrained(folder)
    atlas = registry.AtlasRecord(atlas="olmo-like", model_id="tiny", num_layers=LAYERS, neurons_per_layer=NPL)
    atlas.settings.cluster.method, atlas.settings.cluster.min_count = "weight_graph", 1
    registry.add(wh, atlas)
    compute_wiring(wh, "olmo-like", folder, top_k=10, show_progress=False)
    build(wh)
    report = run_audits(wh)
    assert report.passed, [a for a in report.audits if not a.passed]
    con = duckdb.connect(str(wh.duckdb), read_only=True)
    try:
        methods = con.execute(
            "select method, count(*), min(count), max(count), bool_and(weight_min = weight_max and mean_weight = weight_sum) "
            "from edges where atlas = 'olmo-like' group by method"
        ).fetchall()
        norms = con.execute("select count(output_norm) from neurons where atlas = 'olmo-like'").fetchone()[0]
        clustered = con.execute("select count(*) from neurons where atlas = 'olmo-like' and cluster_path is not null").fetchone()[0]
    finally:
        con.close()
    # one weight edge per downstream connection listed (up to 10 + 10 per neuron of layers 0..L-2)
    downstream = [r for r in lake.read(wh, "wiring").to_pylist() if r["direction"] == "downstream"]
    assert methods == [("weight_graph", len(downstream), 1, 1, True)]
    assert 0.9 * (LAYERS - 1) * NPL * 20 < len(downstream) <= (LAYERS - 1) * NPL * 20
    assert norms == LAYERS * NPL
    assert clustered > 0


def test_cache_with_missing_fields_and_malformed_entries(wh, tmp_path):
    registry.add(wh, registry.AtlasRecord(atlas="t", model_id="m", num_layers=4, neurons_per_layer=10))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "layer_1.json").write_text(
        json.dumps(
            {
                "3": {
                    "upstream": {"excitatory": [{"layer": 0, "neuron": 7, "effective_strength": 0.3}]},
                    "downstream": {"inhibitory": [{"layer": 2, "neuron": 1, "effective_strength": -0.2, "c_up": -0.1}]},
                    "projections": {"promoted": [{"token": " Paris", "token_id": 5, "weight": 0.4}]},
                },
                "4": {"downstream": {"excitatory": [{"layer": 2, "neuron": 1}]}},  # no effective_strength
                "5": {"downstream": {"excitatory": [{"layer": 9, "neuron": 1, "effective_strength": 0.1}]}},  # outside the shape
            }
        )
    )
    report = ingest_wiring(wh, "t", cache, show_progress=False)
    assert report.rejected == 2 and report.exit_code == 1
    rows = lake.read(wh, "wiring").to_pylist()
    assert sorted((r["direction"], r["polarity"], r["other_layer"], r["c_up"], r["c_gate"]) for r in rows) == [
        ("downstream", "inhibitory", 2, -0.1, None),
        ("upstream", "excitatory", 0, None, None),
    ]
    assert [(p["kind"], p["token"]) for p in lake.read(wh, "projections").to_pylist()] == [("promotes", " Paris")]
    assert {r["record"] for r in lake.read(wh, "rejects").to_pylist()} == {"4", "5"}
