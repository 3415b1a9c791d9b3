"""Graph rows: the columnar fast path gives exactly what the pydantic path gives, and declines what it cannot judge."""

from __future__ import annotations

import copy
import gzip
import json

import pyarrow.compute as pc
import pytest
from conftest import tiny_graph
from pydantic import ValidationError

from circuitlake.ingest.graph_rows import GraphError, Shape, _read_checked, _read_columnar, many_rows, read_graph, to_rows


def rows_of(graph) -> tuple:
    rows = to_rows(graph, 8, 512)
    return rows.graph, rows.nodes.to_pylist(), rows.links.to_pylist()


def test_fast_path_takes_the_sample_corpus_and_matches_pydantic(small_corpus):
    files = sorted(small_corpus.iterdir())
    for f in files:
        data = gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
        fast = _read_columnar(data)
        assert fast is not None, f  # int layers, string layers, pretty and compact
        assert rows_of(fast) == rows_of(_read_checked(data)), f


@pytest.mark.parametrize(
    "change", ["mixed layers", "duplicate node id", "dangling twice", "weight as text", "no metadata", "other node kind"]
)
def test_edge_cases_match_pydantic(change):
    g = tiny_graph()
    if change == "mixed layers":
        pass  # tiny_graph mixes int and string layers: pyarrow refuses, pydantic decides
    elif change == "duplicate node id":  # the last node of an id is the one links refer to
        g["nodes"].append({**g["nodes"][1], "activation": 3.0, "influence": 9.0})
    elif change == "dangling twice":
        g["links"] += [{"source": "1_4_0", "target": "3_7_1", "weight": 0.2}, {"source": "1_4_0", "target": "2_2_1", "weight": 0.3}]
    elif change == "weight as text":
        g["links"][0]["weight"] = "1.5"
    elif change == "no metadata":
        del g["metadata"]
    elif change == "other node kind":
        g["nodes"].append({"node_id": "err_1", "feature": None, "layer": "2", "ctx_idx": 1, "feature_type": "error"})
    for layers in ("as given", "all text"):
        if layers == "all text":
            g = copy.deepcopy(g)
            for n in g["nodes"]:
                n["layer"] = str(n["layer"])
        data = json.dumps(g, indent=2).encode()
        assert rows_of(read_graph(data)) == rows_of(_read_checked(data)), (change, layers)
    if change == "dangling twice":
        assert rows_of(read_graph(data))[0]["dangling_links"] == 2


def test_null_where_an_object_is_required_is_rejected_with_its_path():
    g = tiny_graph()
    g["metadata"] = None
    with pytest.raises(ValidationError, match="metadata"):
        read_graph(json.dumps(g).encode())
    g = tiny_graph()
    g["links"][1]["weight"] = None
    with pytest.raises(ValidationError, match=r"links\.1\.weight"):
        read_graph(json.dumps(g).encode())


def test_first_broken_rule_in_file_order_is_reported():
    g = tiny_graph()
    for n in g["nodes"]:
        n["layer"] = str(n["layer"])
    g["nodes"][1].update(feature=9999, node_id="0_9999_0")  # outside 8 x 512, before ...
    g["nodes"].append({"node_id": "x", "feature_type": "mlp_neuron", "layer": "E"})  # ... a neuron without a layer
    with pytest.raises(GraphError) as e:
        to_rows(read_graph(json.dumps(g).encode()), 8, 512)
    assert e.value.record == "nodes[1] '0_9999_0'" and "outside the atlas shape" in e.value.reason
    g["nodes"][1].update(feature=5, node_id="0_5_0")
    with pytest.raises(GraphError, match="without a layer") as e:
        to_rows(read_graph(json.dumps(g).encode()), 8, 512)
    assert e.value.record == "nodes[4] 'x'"


def test_a_neuron_feature_that_contradicts_its_node_id_is_rejected():
    g = tiny_graph()
    g["nodes"][2]["feature"] = 8  # node_id 3_7_1 says neuron 7: never stored at 8
    with pytest.raises(GraphError, match="node_id says L3/N7 at position 1") as e:
        to_rows(read_graph(json.dumps(g).encode()), 8, 512)
    assert e.value.record == "nodes[2] '3_7_1'"


@pytest.mark.parametrize(
    "where, value, record", [("links", "NaN", "links[1]"), ("links", "Infinity", "links[1]"), ("nodes", "-Infinity", "nodes[2] '3_7_1'")]
)
def test_non_finite_numbers_are_rejected_with_their_record(where, value, record):
    g = tiny_graph()
    if where == "links":
        g["links"][1]["weight"] = 12345.5
    else:
        g["nodes"][2]["influence"] = 12345.5
    data = json.dumps(g).replace("12345.5", value).encode()  # what Python's json writes for nan/inf
    with pytest.raises(GraphError) as e:
        to_rows(read_graph(data), 8, 512)
    assert e.value.record == record and "not finite" in e.value.reason


@pytest.mark.parametrize(
    "change, record",
    [
        (lambda g: g["nodes"][1].update(ctx_idx=-1), "nodes.1.ctx_idx"),
        (lambda g: g["nodes"][0].update(feature=-9), "nodes.0.feature"),
        (lambda g: g["metadata"].update(corpus_index=-1), "metadata.corpus_index"),
        (lambda g: g["metadata"].update(node_threshold=-0.5), "metadata.node_threshold"),
    ],
)
def test_out_of_range_numbers_are_rejected_by_both_paths(change, record):
    g = tiny_graph()
    change(g)
    data = json.dumps(g).encode()
    assert _read_columnar(data) is None  # the fast path declines; the pydantic format names the record
    with pytest.raises(ValidationError) as bad:
        read_graph(data)
    assert ".".join(map(str, bad.value.errors()[0]["loc"])) == record


def test_neuron_link_going_back_in_position_is_rejected():
    g = tiny_graph()
    g["nodes"][2].update(ctx_idx=0, node_id="3_7_0")
    g["nodes"][1].update(ctx_idx=1, node_id="0_5_1")
    g["links"][0]["target"] = g["links"][1]["source"] = "0_5_1"
    g["links"][1]["target"] = g["links"][2]["source"] = "3_7_0"
    with pytest.raises(GraphError, match="same or a later position") as bad:
        to_rows(read_graph(json.dumps(g).encode()), 8, 512)
    assert bad.value.record == "links[1]"


@pytest.mark.parametrize("where", ["ctx_idx", "feature"])
def test_integers_beyond_the_lake_columns_are_rejected_not_crashed(where):
    g = tiny_graph()
    g["nodes"][1][where] = 2**70
    data = json.dumps(g).encode()
    assert _read_columnar(data) is None
    with pytest.raises(ValidationError) as bad:
        read_graph(data)
    assert ".".join(map(str, bad.value.errors()[0]["loc"])) == f"nodes.1.{where}"


def test_graphs_made_together_get_the_rows_each_gets_alone(small_corpus):
    """many_rows over a chunk equals to_rows graph by graph: ids match within their own graph only."""
    dangling_here = tiny_graph()  # names 2_2_1, a node of the next graph but not its own: dangling here
    dangling_here["links"].append({"source": "0_5_0", "target": "2_2_1", "weight": 0.4})
    holder = tiny_graph(prompt="q")
    holder["nodes"].append({"node_id": "2_2_1", "feature": 2, "layer": 2, "ctx_idx": 1, "feature_type": "mlp_neuron"})
    holder["links"].append({"source": "0_5_0", "target": "2_2_1", "weight": 0.0})  # dropped, counted
    duplicate = tiny_graph()
    duplicate["nodes"].append({**duplicate["nodes"][1], "activation": 3.0})  # the last copy of an id counts
    other = tiny_graph()
    other["nodes"].append({"node_id": "err_1", "layer": "2", "ctx_idx": 1, "feature_type": "error"})
    other["links"].append({"source": "err_1", "target": "3_7_1", "weight": 0.1})
    files = sorted(small_corpus.iterdir())[:4]
    graphs = [read_graph(gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()) for f in files]
    graphs += [read_graph(json.dumps(g).encode()) for g in (dangling_here, holder, duplicate, other)]
    together = many_rows(graphs, Shape(8, 512))
    for i, graph in enumerate(graphs):
        alone = to_rows(graph, 8, 512)
        assert together.graphs[i] == alone.graph, i
        for part in ("nodes", "links"):
            mine = getattr(together, part).filter(pc.equal(getattr(together, part)["graph"], i))
            assert mine.drop_columns("graph").to_pylist() == getattr(alone, part).drop_columns("graph").to_pylist(), (i, part)
    assert together.graphs[4]["dangling_links"] == 1 and together.graphs[5]["dangling_links"] == 0
    assert together.graphs[5]["zero_weight_links"] == 1 and together.graphs[7]["error_nodes"] == 1


def test_a_chunk_with_a_broken_graph_fails_as_a_whole():
    """The lander then makes each graph alone (test_ingest_graphs: the others land, the reject names its record)."""
    broken = tiny_graph()
    broken["nodes"][2]["feature"] = 8  # contradicts its node_id
    with pytest.raises(GraphError):
        many_rows([read_graph(json.dumps(g).encode()) for g in (tiny_graph(), broken)], Shape(8, 512))
