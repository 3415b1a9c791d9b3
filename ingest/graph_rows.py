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


def classify(node: GraphNode) -> Endpoint:
    ft = (node.feature_type or "").lower()
    parsed = endpoint_from_id(node.node_id)
    if node.isLogit or ft == "logit":
        kind = "logit"
    elif ft == "embedding":
        kind = "embedding"
    elif ft in NEURON_TYPES or (not ft and parsed):
        kind = "neuron" if ft else parsed.kind
    else:
        kind = "other"
    if kind == "neuron":
        layer = _int(node.layer)
        layer = layer if layer is not None else (parsed.layer if parsed else None)
        feature = node.feature if node.feature is not None else (parsed.feature if parsed else None)
        if layer is None or feature is None:
            raise GraphError(f"node {node.node_id!r}", "neuron node without a layer or neuron index")
        return Endpoint(kind, layer, feature, node.ctx_idx if node.ctx_idx is not None else (parsed.pos if parsed else None))
    if kind in ("embedding", "logit"):
        feature = node.feature if node.feature is not None else (parsed.feature if parsed else None)
        return Endpoint(kind, None, feature, node.ctx_idx if node.ctx_idx is not None else (parsed.pos if parsed else None))
    return Endpoint("other", _int(node.layer), node.feature, node.ctx_idx)


class GraphRows(NamedTuple):
    graph: dict
    nodes: pa.Table
    links: pa.Table


def to_rows(graph: GraphFile, num_layers: int, neurons_per_layer: int) -> GraphRows:
    """Rows for one graph (without atlas/batch/graph key, which the job adds). Raises GraphError."""
    by_id: dict[str, Endpoint] = {}
    nodes: dict[str, list] = {k: [] for k in ("kind", "layer", "feature", "position", "influence", "activation", "node_id", "feature_type")}
    for i, node in enumerate(graph.nodes):
        ep = classify(node)
        if ep.kind == "neuron" and not (0 <= ep.layer < num_layers and 0 <= ep.feature < neurons_per_layer):
            raise GraphError(f"nodes[{i}] {node.node_id!r}", f"neuron L{ep.layer}/N{ep.feature} is outside the atlas shape {num_layers} x {neurons_per_layer}")
        by_id[node.node_id] = ep
        other = ep.kind == "other"
        for key, value in zip(nodes, (ep.kind, ep.layer, ep.feature, ep.pos, node.influence, node.activation,
                                      node.node_id if other else None, node.feature_type if other else None)):
            nodes[key].append(value)

    links: dict[str, list] = {k: [] for k in ("src_kind", "src_layer", "src_feature", "src_pos", "tgt_kind", "tgt_layer", "tgt_feature", "tgt_pos", "weight")}
    dangling = 0
    for i, link in enumerate(graph.links):
        ends = []
        for side in (link.source, link.target):
            ep = by_id.get(side)
            if ep is None:
                ep = endpoint_from_id(side)
                if ep is None:
                    raise GraphError(f"links[{i}]", f"endpoint {side!r} is not a node and has no neuron/E/L id shape")
                if ep.kind == "neuron" and not (0 <= ep.layer < num_layers and 0 <= ep.feature < neurons_per_layer):
                    raise GraphError(f"links[{i}]", f"endpoint {side!r} is outside the atlas shape {num_layers} x {neurons_per_layer}")
                dangling += 1
            ends.append(ep)
        src, tgt = ends
        if src.kind == "neuron" and tgt.kind == "neuron" and src.layer >= tgt.layer:
            raise GraphError(f"links[{i}]", f"neuron link {link.source} -> {link.target} does not go to a later layer")
        for key, value in zip(links, (*src, *tgt, link.weight)):
            links[key].append(value)

    meta, gen = graph.metadata, graph.metadata.generation_settings
    exceeded = graph.nodes_exceeded if graph.nodes_exceeded is not None else bool(gen.nodes_exceeded)
    row = {
        "slug": meta.slug,
        "scan": meta.scan,
        "prompt": meta.prompt,
        "prompt_tokens": meta.prompt_tokens,
        "corpus_index": meta.corpus_index,
        "node_threshold": meta.node_threshold if meta.node_threshold is not None else gen.node_threshold,
        "metric_value": gen.metric_value,
        "target_position": meta.target_position if meta.target_position is not None else gen.target_position,
        "nodes_exceeded": exceeded,
        "node_count": len(graph.nodes),
        "neuron_count": nodes["kind"].count("neuron"),
        "link_count": len(graph.links),
        "dangling_links": dangling,
    }
    return GraphRows(row, pa.table(nodes), pa.table(links))
