"""Turn one parsed attribution graph into lake rows (graphs, graph_nodes, graph_links).

Node kinds come from `feature_type` / `isLogit` / the id's shape, never from the layer number.
A link endpoint missing from `nodes` is kept when its id has a known shape (neuron
"{layer}_{neuron}_{pos}", embedding "E_{tok}_{pos}", logit "L_{tok}_{pos}"), as the research
aggregator did, and counted in `graphs.dangling_links`. A graph that breaks a rule is rejected
whole (a partial graph would skew appearance counts): GraphError names the record.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from circuitlake.formats.graph import GraphFile, GraphNode

NEURON_ID = re.compile(r"^(\d+)_(\d+)_(\d+)$")
TOKEN_ID = re.compile(r"^([EL])_(\d+)_(\d+)$")
NEURON_TYPES = {"mlp_neuron", "mlp neuron", "neuron"}


class GraphError(ValueError):
    """A rule the graph breaks; `record` is where (e.g. 'links[17]')."""

    def __init__(self, record: str, reason: str):
        super().__init__(f"{record}: {reason}")
        self.record, self.reason = record, reason


class Endpoint(NamedTuple):
    kind: str
    layer: int | None
    feature: int | None
    pos: int | None


def _int(value) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def endpoint_from_id(node_id: str) -> Endpoint | None:
    """Parse a node id by its shape; None when it has none of the known shapes."""
    if m := NEURON_ID.match(node_id):
        return Endpoint("neuron", int(m[1]), int(m[2]), int(m[3]))
    if m := TOKEN_ID.match(node_id):
        return Endpoint("embedding" if m[1] == "E" else "logit", None, int(m[2]), int(m[3]))
    return None


def _first(*values):
    return next((v for v in values if v is not None), None)


def classify(node: GraphNode) -> Endpoint:
    if node.get("feature_type") == "mlp_neuron":  # the common case, without parsing the id
        layer, feature, pos = _int(node.get("layer")), node.get("feature"), node.get("ctx_idx")
        if layer is not None and feature is not None and pos is not None:
            return Endpoint("neuron", layer, feature, pos)
    ft = (node.get("feature_type") or "").lower()
    parsed = endpoint_from_id(node["node_id"]) or Endpoint("other", None, None, None)
    if node.get("isLogit") or ft == "logit":
        kind = "logit"
    elif ft == "embedding":
        kind = "embedding"
    elif ft in NEURON_TYPES or (not ft and parsed.kind != "other"):
        kind = "neuron" if ft else parsed.kind
    else:
        return Endpoint("other", _int(node.get("layer")), node.get("feature"), node.get("ctx_idx"))
    layer = _first(_int(node.get("layer")), parsed.layer) if kind == "neuron" else None
    feature = _first(node.get("feature"), parsed.feature)
    if kind == "neuron" and (layer is None or feature is None):
        raise GraphError(f"node {node['node_id']!r}", "neuron node without a layer or neuron index")
    return Endpoint(kind, layer, feature, _first(node.get("ctx_idx"), parsed.pos))


class GraphRows(NamedTuple):
    graph: dict
    nodes: pa.Table
    links: pa.Table


def _check_shape(ep: Endpoint, record: str, shape: tuple[int, int]) -> None:
    if ep.kind == "neuron" and not (0 <= ep.layer < shape[0] and 0 <= ep.feature < shape[1]):
        raise GraphError(record, f"neuron L{ep.layer}/N{ep.feature} is outside the atlas shape {shape[0]} x {shape[1]}")


def to_rows(graph: GraphFile, num_layers: int, neurons_per_layer: int) -> GraphRows:
    """Rows for one graph (without atlas/batch/graph key, which the job adds). Raises GraphError.

    Link columns are gathered from per-endpoint arrays by index (Arrow `take`), so the per-link
    Python work is two dictionary lookups.
    """
    shape = (num_layers, neurons_per_layer)
    index: dict[str, int] = {}
    endpoints: list[Endpoint] = []
    node_extra = []
    for i, node in enumerate(graph["nodes"]):
        ep = classify(node)
        _check_shape(ep, f"nodes[{i}] {node['node_id']!r}", shape)
        index[node["node_id"]] = len(endpoints)
        endpoints.append(ep)
        other = ep.kind == "other"
        node_extra.append((node.get("influence"), node.get("activation"),
                           node["node_id"] if other else None, node.get("feature_type") if other else None))
    n_nodes = len(endpoints)

    links = graph["links"]
    sides = {}
    for side in ("source", "target"):
        ids = [link[side] for link in links]
        positions = [index.get(x) for x in ids]
        if None in positions:  # dangling endpoints: parse the id, add a pseudo-endpoint (not a node row)
            for i, (x, p) in enumerate(zip(ids, positions)):
                if p is None:
                    ep = endpoint_from_id(x)
                    if ep is None:
                        raise GraphError(f"links[{i}]", f"{side} {x!r} is not a node and has no neuron/E/L id shape")
                    _check_shape(ep, f"links[{i}]", shape)
                    positions[i] = index[x] = len(endpoints)
                    endpoints.append(ep)
        sides[side] = np.asarray(positions, dtype=np.int64)
    dangling = len(endpoints) - n_nodes

    types = (pa.string(), pa.int16(), pa.int64(), pa.int32())
    columns = [pa.array(list(c), t) for c, t in zip(zip(*endpoints), types)] if endpoints else [pa.array([], t) for t in types]
    is_neuron = np.array([ep.kind == "neuron" for ep in endpoints], dtype=bool)
    layer = np.array([-1 if ep.layer is None else ep.layer for ep in endpoints], dtype=np.int64)
    src, tgt = sides["source"], sides["target"]
    backwards = is_neuron[src] & is_neuron[tgt] & (layer[src] >= layer[tgt])
    if backwards.any():
        i = int(np.argmax(backwards))
        raise GraphError(f"links[{i}]", f"neuron link {links[i]['source']} -> {links[i]['target']} does not go to a later layer")
    link_columns = {f"{prefix}_{name}": col.take(pa.array(idx)) for prefix, idx in (("src", src), ("tgt", tgt))
                    for name, col in zip(("kind", "layer", "feature", "pos"), columns)}
    link_columns["weight"] = pa.array([link["weight"] for link in links], pa.float64())
    node_columns = {name: col.slice(0, n_nodes) for name, col in zip(("kind", "layer", "feature", "position"), columns)}
    extra = list(zip(*node_extra)) if node_extra else [[], [], [], []]
    for name, values, t in zip(("influence", "activation", "node_id", "feature_type"), extra,
                               (pa.float64(), pa.float64(), pa.string(), pa.string())):
        node_columns[name] = pa.array(list(values), t)

    meta = graph.get("metadata", {})
    gen = meta.get("generation_settings", {})
    exceeded = graph.get("nodes_exceeded")
    row = {
        "slug": meta.get("slug"),
        "scan": meta.get("scan"),
        "prompt": meta.get("prompt"),
        "prompt_tokens": meta.get("prompt_tokens", []),
        "corpus_index": meta.get("corpus_index"),
        "node_threshold": _first(meta.get("node_threshold"), gen.get("node_threshold")),
        "metric_value": gen.get("metric_value"),
        "target_position": _first(meta.get("target_position"), gen.get("target_position")),
        "nodes_exceeded": bool(exceeded if exceeded is not None else gen.get("nodes_exceeded")),
        "node_count": n_nodes,
        "neuron_count": int(is_neuron[:n_nodes].sum()),
        "link_count": len(links),
        "dangling_links": dangling,
    }
    return GraphRows(row, pa.table(node_columns), pa.table(link_columns))
