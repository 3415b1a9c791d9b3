"""Real producers' data: circuit-tracer and Neuronpedia graphs of transcoder features (three `feature`
encodings, both error-node id shapes with the shared-id case, zero-weight and backward links,
neuron-shaped logit ids, clerp labels) and Neuronpedia's explanation exports, through ingest, build,
audits, card, search, clusters and export; the published edges against a recomputation from the raw JSON."""

from __future__ import annotations

import copy
import gzip
import json
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest
from conftest import cli, ledger_table, tiny_graph, write_graph

from circuitlake import lake, registry
from circuitlake.app.build import build
from circuitlake.app.demo import add_transcoder_atlas
from circuitlake.app.report import run_audits
from circuitlake.app.sample_transcoder import TRANSCODER_ATLAS, TranscoderSpec, cantor, make_graph, planted_features
from circuitlake.atlas import Atlas
from circuitlake.errors import UserError
from circuitlake.ingest.graph_rows import GraphError, read_graph, to_rows
from circuitlake.ingest.graphs import ingest_graphs
from circuitlake.ingest.labels import ingest_labels
from circuitlake.settings import warehouse

SPEC = TranscoderSpec(graphs=30)
UNIT_TYPES = {"cross layer transcoder", "clt", "transcoder", "per layer transcoder"}


def load(path: Path) -> dict:
    data = path.read_bytes()
    return json.loads(gzip.decompress(data) if path.suffix == ".gz" else data)


def recompute_edges(files: list[Path], min_count: int) -> dict[tuple, tuple]:
    """The published edges from the raw JSON, by the format facts alone: transcoder nodes by
    feature_type, their index from node_id; zero-weight links and links naming an id that two nodes
    hold left out; positions collapsed; count >= min_count."""
    stats: dict[tuple, list] = defaultdict(lambda: [0, 0.0, 0.0, float("inf"), float("-inf")])
    for f in files:
        g = load(f)
        holders = defaultdict(list)
        for n in g["nodes"]:
            holders[n["node_id"]].append(n)
        unit = {}
        for node_id, ns in holders.items():
            if len(ns) == 1 and ns[0]["feature_type"] in UNIT_TYPES:
                layer, index, _pos = node_id.split("_")
                unit[node_id] = (int(layer), int(index))
        for link in g["links"]:
            if link["weight"] == 0 or link["source"] not in unit or link["target"] not in unit:
                continue
            s = stats[unit[link["source"]] + unit[link["target"]]]
            w = link["weight"]
            s[0] += 1
            s[1] += w
            s[2] += abs(w)
            s[3], s[4] = min(s[3], w), max(s[4], w)
    return {k: (v[0], round(v[1], 9), round(v[2], 9), v[3], v[4]) for k, v in stats.items() if v[0] >= min_count}


@pytest.fixture(scope="module")
def clt(tmp_path_factory):
    """The demo's transcoder atlas on its own: circuit-tracer / Neuronpedia graphs and explanation exports,
    built, clustered and audited."""
    root = tmp_path_factory.mktemp("clt")
    wh = warehouse(root / "warehouse")
    lake.ensure(wh)
    add_transcoder_atlas(wh, root / "corpus", SPEC)
    build(wh)
    return wh, root / "corpus"


def test_published_edges_equal_a_recomputation_from_the_raw_json(clt):
    wh, corpus = clt
    files = sorted((corpus / "graphs").iterdir())
    expected = recompute_edges(files, min_count=3)
    db = duckdb.connect(str(wh.duckdb), read_only=True)
    rows = db.execute(
        """select src_layer, src_neuron, tgt_layer, tgt_neuron, count, weight_sum, weight_abs_sum, weight_min, weight_max
           from edges where atlas = ? and method = 'relp'""",
        [TRANSCODER_ATLAS],
    ).fetchall()
    published = {r[:4]: (r[4], round(r[5], 9), round(r[6], 9), r[7], r[8]) for r in rows}
    assert len(expected) > 20 and published == expected
    # every feature index is the per-layer index from node_id, never the encoded `feature`
    assert max(r[1] for r in rows) < SPEC.features_per_layer and max(r[3] for r in rows) < SPEC.features_per_layer
    neurons = db.execute("select count(*), min(unit_type), max(unit_type) from neurons where atlas = ?", [TRANSCODER_ATLAS]).fetchone()
    assert neurons[0] > 0 and neurons[1] == neurons[2] == "transcoder"
    db.close()


def test_every_node_kind_lands_raw_and_the_graph_counts_what_it_could_not_attribute(clt):
    wh, corpus = clt
    nodes = lake.read(wh, "graph_nodes", filters=[("atlas", "=", TRANSCODER_ATLAS)]).to_pylist()
    kinds = defaultdict(list)
    for n in nodes:
        kinds[n["kind"]].append(n)
    assert set(kinds) == {"transcoder", "error", "embedding", "logit"}
    assert {n["feature"] for n in kinds["error"]} == {-1} and all(n["layer"] is not None for n in kinds["error"])
    assert all(n["layer"] is None for n in kinds["logit"])  # "{n_layers+1}_{vocab}_{pos}" is a logit, not a feature
    graphs = {g["slug"]: g for g in lake.read(wh, "graphs").to_pylist()}
    groups = planted_features(SPEC)
    for i in range(SPEC.graphs):
        producer, g = make_graph(SPEC, i, groups)
        row = graphs[g["metadata"]["slug"]]
        zero = sum(link["weight"] == 0 for link in g["links"])
        ids = defaultdict(int)
        for n in g["nodes"]:
            ids[n["node_id"]] += 1
        shared = sum(ids[link["source"]] > 1 or ids[link["target"]] > 1 for link in g["links"] if link["weight"] != 0)
        assert (row["zero_weight_links"], row["ambiguous_links"], row["link_count"]) == (zero, shared, len(g["links"]) - zero)
        assert row["error_nodes"] == sum(n["feature_type"] == "mlp reconstruction error" for n in g["nodes"])
        assert (shared > 0) == (producer == "neuronpedia 1.0.0")  # the "0_{layer}_{pos}" error id next to a layer-0 feature
        assert row["generator"] == ("neuronpedia-graph-generator 1.0.0" if producer == "neuronpedia 1.0.0" else None)
    # embeddings carry the token id from "E_{token}_{pos}" (circuit-tracer writes feature = pos)
    _, g0 = make_graph(SPEC, 0, groups)
    token_of = {n["ctx_idx"]: int(n["node_id"].split("_")[1]) for n in g0["nodes"] if n["feature_type"] == "embedding"}
    key = next(g["graph_key"] for g in graphs.values() if g["slug"] == g0["metadata"]["slug"])
    landed = {n["position"]: n["feature"] for n in kinds["embedding"] if n["graph_key"] == key}
    assert landed == token_of and any(token != pos for pos, token in token_of.items())


def test_card_search_audits_clusters_and_export_work_on_features(clt, tmp_path):
    wh, _ = clt
    layer, index = planted_features(SPEC)[0][1]
    with Atlas(wh, TRANSCODER_ATLAS) as a:
        spellings = [f"{layer}_{index}_3", f"L{layer}/F{index}", f"L{layer}/N{index}", str(layer * SPEC.features_per_layer + index)]
        assert {(a.neuron(k).layer, a.neuron(k).neuron) for k in spellings} == {(layer, index)}
        card = a.neuron(f"{layer}_{index}_3").card()
        assert card["neuron_row"]["label"] == "capital cities" and card["neuron_row"]["appearance_count"] > 0
        assert {(x["pass"], x["labeler_model"]) for x in card["labels"]} >= {("autointerp", "gpt-4o-mini")}
        hits = a.search("capital cities", 20).fetchall()
        assert (layer, index) in {(h[0], h[1]) for h in hits}
    shown = cli("neuron", f"{layer}_{index}_3", "--atlas", TRANSCODER_ATLAS, wh=wh.root)
    assert shown.returncode == 0 and f"L{layer}/F{index}" in shown.stdout and "capital cities" in shown.stdout
    report = run_audits(wh)
    assert report.passed, [x for x in report.audits if not x.passed]
    db = duckdb.connect(str(wh.duckdb), read_only=True)
    assert db.execute("select count(*) from clusters where atlas = ?", [TRANSCODER_ATLAS]).fetchone()[0] > 0
    db.close()
    out = tmp_path / "clt.duckdb"
    done = cli("export", str(out), "--layout", "circuitlake", "--atlas", TRANSCODER_ATLAS, wh=wh.root)
    assert done.returncode == 0, done.stderr
    exported = duckdb.connect(str(out), read_only=True)
    assert exported.execute("select count(*) from edges").fetchone()[0] > 0
    assert exported.execute("select distinct unit_type from neurons").fetchall() == [("transcoder",)]


def test_neuronpedia_exports_land_every_explanation_with_its_provenance(clt):
    wh, corpus = clt
    labels = lake.read(wh, "labels", filters=[("atlas", "=", TRANSCODER_ATLAS)]).to_pylist()
    records = json.loads((corpus / "labels" / "explanations_export.json").read_text())
    records += [json.loads(line) for line in gzip.decompress((corpus / "labels" / "explanations_bulk.jsonl.gz").read_bytes()).splitlines()]
    assert len(labels) == len(records)  # every explanation, the JSON array and the gzipped JSONL
    landed = {(r["layer"], r["neuron"], r["label"]): (r["pass"], r["labeler_model"], r["type"]) for r in labels}
    firsts = set()
    for r in records:
        key = (int(r["layer"].split("-")[0]), int(r["index"]))
        first = key not in firsts
        firsts.add(key)
        assert landed[(*key, r["description"])] == (
            "autointerp" if first else "autointerp_alternative",
            r["explanationModelName"],
            r["typeName"],
        )


def test_graph_clerps_label_units_nothing_else_labels(wh, tmp_path):
    registry.add(
        wh, registry.AtlasRecord(atlas="np", model_id="m", num_layers=6, neurons_per_layer=2048, unit="transcoder", universe="observed")
    )
    groups = planted_features(SPEC)
    _, g = make_graph(SPEC, 1, groups)  # a graph downloaded from Neuronpedia: clerps on its features
    path = write_graph(tmp_path / "np.json", g)
    assert ingest_graphs(wh, "np", [str(path)], show_progress=False).landed == 1
    with pytest.raises(UserError, match="its unit cannot change"):  # its landed graphs would silently stop counting
        registry.add(wh, registry.AtlasRecord(atlas="np", model_id="m", num_layers=6, neurons_per_layer=2048, unit="neuron"))
    build(wh, cluster=False)
    clerps = {n["node_id"]: n["clerp"] for n in g["nodes"] if n["feature_type"] == "cross layer transcoder" and n["clerp"]}
    db = duckdb.connect(str(wh.duckdb), read_only=True)
    labeled = dict(
        ((layer, n), label)
        for layer, n, label in db.execute("select layer, neuron, label from neurons where atlas = 'np' and label is not null").fetchall()
    )
    db.close()
    assert clerps and labeled == {tuple(int(x) for x in node_id.split("_")[:2]): clerp for node_id, clerp in clerps.items()}
    # a graph batch without clerps leaves the clerp readers (and the labels) alone; the next with clerps reads both
    plain = {**g, "metadata": {**g["metadata"], "prompt": "no clerps"}, "nodes": [{**n, "clerp": None} for n in g["nodes"]]}
    assert ingest_graphs(wh, "np", [str(write_graph(tmp_path / "plain.json", plain))], show_progress=False).landed == 1
    assert not any("clerp_labels" in m or "neuron_labels" in m for m in build(wh, cluster=False))
    node = next(n for n in g["nodes"] if n["node_id"] in clerps)
    nodes = [{**n, "clerp": "a new clerp"} if n is node else n for n in g["nodes"]]
    relabeled = {**g, "metadata": {**g["metadata"], "prompt": "new clerp"}, "nodes": nodes}
    assert ingest_graphs(wh, "np", [str(write_graph(tmp_path / "relabeled.json", relabeled))], show_progress=False).landed == 1
    assert any("clerp_labels" in m for m in build(wh, cluster=False))
    db = duckdb.connect(str(wh.duckdb), read_only=True)
    ledger = ledger_table(db, "stg__clerp_labels")
    read = db.execute(f"select count(distinct batch) from {ledger} where atlas = 'np'").fetchone()[0]
    held = db.execute("select count(distinct batch) from stg.clerp_labels where atlas = 'np'").fetchone()[0]
    layer, index = (int(x) for x in node["node_id"].split("_")[:2])
    label = db.execute("select label from neurons where atlas = 'np' and layer = ? and neuron = ?", [layer, index]).fetchone()[0]
    db.close()
    assert (read, held) == (3, 2)  # the clerp-less batch was read too (the ledger says so), with the batch after it
    assert label == "a new clerp"  # the newest batch's clerp


def test_producers_graphs_need_an_atlas_of_their_unit(wh, tmp_path, atlas):
    (tmp_path / "clt").mkdir()
    _, g = make_graph(SPEC, 0, planted_features(SPEC))
    write_graph(tmp_path / "clt" / "g.json", g)
    report = ingest_graphs(wh, atlas, [str(tmp_path / "clt")], show_progress=False)
    assert report.landed == 0 and report.rejected == 1
    assert "'cross layer transcoder' nodes: atlas small holds MLP neurons; add an atlas with --unit transcoder" in report.rejects[0]
    status = cli("status", wh=wh.root)
    assert status.returncode == 1 and "every graph file ingested was rejected" in status.stdout
    # and RelP graphs of MLP neurons are refused by a transcoder atlas
    registry.add(wh, registry.AtlasRecord(atlas="clt", model_id="m", num_layers=8, neurons_per_layer=4096, unit="transcoder"))
    write_graph(tmp_path / "relp.json", tiny_graph())
    refused = ingest_graphs(wh, "clt", [str(tmp_path / "relp.json")], show_progress=False)
    assert refused.rejected == 1 and "holds transcoder features; add an atlas with --unit neuron" in refused.rejects[0]


@pytest.mark.parametrize("producer", [0, 1, 2])
def test_each_feature_encoding_gives_the_index_of_the_node_id(producer):
    groups = planted_features(SPEC)
    name, g = make_graph(SPEC, producer, groups)
    features = [n for n in g["nodes"] if n["feature_type"] == "cross layer transcoder"]
    assert any(n["feature"] != int(n["node_id"].split("_")[1]) for n in features)  # the encoded id is not the index
    if name == "circuit-tracer 0.2":
        g = copy.deepcopy(g)  # an index of a 16K set: the Cantor id is far beyond the layer's size
        g["nodes"].insert(0, {**g["nodes"][0], "node_id": "5_16383_1", "feature": cantor(5, 16383), "layer": "5", "ctx_idx": 1})
    rows = to_rows(read_graph(json.dumps(g).encode()), SPEC.layers, 16384, "transcoder")
    landed = [(n["layer"], n["feature"], n["position"]) for n in rows.nodes.to_pylist() if n["kind"] == "transcoder"]
    expected = [tuple(int(x) for x in n["node_id"].split("_")) for n in g["nodes"] if n["feature_type"] == "cross layer transcoder"]
    assert landed == expected


def test_transcoder_nodes_whose_fields_contradict_their_id_are_rejected():
    _, g = make_graph(SPEC, 0, planted_features(SPEC))
    g["nodes"][0]["layer"] = str(int(g["nodes"][0]["layer"]) + 1)
    with pytest.raises(GraphError, match="transcoder node_id says") as e:
        to_rows(read_graph(json.dumps(g).encode()), SPEC.layers, SPEC.features_per_layer, "transcoder")
    assert e.value.record.startswith("nodes[0] ")


def test_a_nonzero_backward_feature_link_rejects_the_graph_a_zero_one_is_dropped():
    _, g = make_graph(SPEC, 0, planted_features(SPEC))
    features = sorted((n for n in g["nodes"] if n["feature_type"] == "cross layer transcoder"), key=lambda n: int(n["layer"]))
    back = {"source": features[-1]["node_id"], "target": features[0]["node_id"], "weight": 0.0}
    g["links"].append(back)
    rows = to_rows(read_graph(json.dumps(g).encode()), SPEC.layers, SPEC.features_per_layer, "transcoder")
    assert rows.graph["zero_weight_links"] == sum(link["weight"] == 0 for link in g["links"])
    back["weight"] = 0.25
    with pytest.raises(GraphError, match="does not go to a later layer") as e:
        to_rows(read_graph(json.dumps(g).encode()), SPEC.layers, SPEC.features_per_layer, "transcoder")
    assert e.value.record == f"links[{len(g['links']) - 1}]"


def test_label_files_of_the_wrong_shape_or_all_rejected_change_nothing(wh, atlas, tmp_path):
    good = tmp_path / "enriched.json"
    good.write_text(json.dumps({"L1/N2": {"label": "kept", "short_label": "kept"}}))
    assert ingest_labels(wh, atlas, good, source="src", show_progress=False).rows["labels"] == 2
    # (d) --format enriched on a top-level array: an error, nothing lands
    array = tmp_path / "src.json"
    array.write_text(json.dumps([{"modelId": "m", "layer": "1-clt-hp", "index": "2", "description": "np label"}]))
    refused = cli("ingest", "labels", str(array), "--atlas", atlas, "--format", "enriched", "--source", "src", wh=wh.root)
    assert refused.returncode == 2 and "no enriched records" in refused.stderr
    # (c) a JSONL export read with the wrong --format: every record rejected; the source keeps its labels,
    # and the retry of the same file with the right format lands it (not "nothing to do")
    jsonl = tmp_path / "src.jsonl"
    jsonl.write_text(json.dumps({"modelId": "m", "layer": "1-clt-hp", "index": "2", "description": "np label"}) + "\n")
    rejected = cli("ingest", "labels", str(jsonl), "--atlas", atlas, "--format", "autointerp-jsonl", "--source", "src", wh=wh.root)
    assert rejected.returncode == 1 and "rejected" in rejected.stderr
    assert {r["label"] for r in lake.read(wh, "labels").to_pylist()} - {None} == {"kept"}
    detected = cli("ingest", "labels", str(jsonl), "--atlas", atlas, "--source", "src", wh=wh.root)
    assert detected.returncode == 0 and "1 rows landed" in detected.stderr, detected.stderr
    assert {r["label"] for r in lake.read(wh, "labels").to_pylist()} == {"np label"}


def test_rejects_are_queryable_before_the_first_build(wh, atlas, tmp_path):
    write_graph(tmp_path / "bad.json", {"nodes": [], "links": [{"source": "x", "target": "y", "weight": 1}]})
    assert cli("ingest", "graphs", str(tmp_path / "bad.json"), "--atlas", atlas, wh=wh.root).returncode == 1
    assert not wh.duckdb.exists()
    shown = cli("query", "select file, reason from lake.rejects", wh=wh.root)
    assert shown.returncode == 0 and "bad.json" in shown.stdout, shown.stderr


def test_a_labeled_unit_outside_an_observed_universe_is_found_and_shown(wh, tmp_path):
    registry.add(wh, registry.AtlasRecord(atlas="obs", model_id="m", num_layers=8, neurons_per_layer=512, universe="observed"))
    write_graph(tmp_path / "g.json", tiny_graph())
    ingest_graphs(wh, "obs", [str(tmp_path / "g.json")], show_progress=False)
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"L6/N100": {"label": "zebra stripes", "short_label": "zebra stripes"}}))  # in no graph
    ingest_labels(wh, "obs", labels, show_progress=False)
    build(wh, cluster=False)
    with Atlas(wh, "obs") as a:
        assert (6, 100) in {(h[0], h[1]) for h in a.search("zebra", 5).fetchall()}
        row = a.neuron("L6/N100").card()["neuron_row"]
        assert row["label"] == "zebra stripes" and row["outside_universe"] and row["feature_id"] == 6 * 512 + 100
    figures = {(f["atlas"], f["figure"]): f["value"] for f in run_audits(wh).figures}
    assert figures[("obs", "labeled neurons outside the universe")] == 1


def test_the_report_counts_no_labeled_neuron_outside_the_universe_as_zero(clt):
    wh, _ = clt
    figures = {(f["atlas"], f["figure"]): f["value"] for f in run_audits(wh).figures}
    assert figures[(TRANSCODER_ATLAS, "labeled neurons outside the universe")] == 0


def test_sample_writes_a_wiring_cache_without_torch(tmp_path, monkeypatch):
    import sys

    from circuitlake.app.sample import SampleSpec, write_wiring
    from circuitlake.formats.wiring_cache import NeuronWiring

    monkeypatch.setitem(sys.modules, "torch", None)  # the `wiring` extra is not installed
    spec = SampleSpec(graphs=2, layers=3, neurons_per_layer=32)  # 20 distinct downstream neurons to draw from
    paths = write_wiring(spec, tmp_path)
    assert len(paths) == 3 and not (tmp_path / "model").exists()
    entry = NeuronWiring.model_validate(json.loads(paths[1].read_text())["0"])
    assert len(entry.downstream.excitatory) == 10 and all(c.layer == 2 for c in entry.downstream.excitatory)
