"""Turn one attribution graph file into lake rows (graphs, graph_nodes, graph_links).

Reading is columnar: orjson parses, each node and link field becomes one Arrow column (its Python
types checked in one pass), and classification, shape checks and the link endpoints are array
operations. A file the fast path cannot take exactly (invalid JSON or NaN, a value the pydantic
format would convert or refuse, an explicit null where only absence is allowed) goes through
pydantic instead, which accepts what it always accepted and rejects with the record's JSON path.

Node kinds come from `feature_type` / `isLogit` / the id's shape, never from the layer number.
A link endpoint missing from `nodes` is kept when its id has a known shape (neuron
"{layer}_{neuron}_{pos}", embedding "E_{tok}_{pos}", logit "L_{tok}_{pos}"), as the research
aggregator did, and counted in `graphs.dangling_links`. Weights, influences and activations must be
finite (Python's JSON reads NaN and Infinity). A graph that breaks a rule is rejected
whole (a partial graph would skew appearance counts): GraphError names the record, and when a
graph breaks several rules it is the first in file order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import repeat
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import TypeAdapter, ValidationError

from circuitlake.formats.graph import GRAPH_FILE, GraphMetadata

NEURON_ID = re.compile(r"^(\d+)_(\d+)_(\d+)$")
TOKEN_ID = re.compile(r"^([EL])_(\d+)_(\d+)$")
NEURON_TYPES = {"mlp_neuron", "mlp neuron", "neuron"}
KINDS = ("neuron", "embedding", "logit", "other")  # endpoint kind codes index this

NODES = pa.schema(
    [
        ("node_id", pa.string()),
        ("feature", pa.int64()),
        ("layer", pa.string()),  # layer as text
        ("ctx_idx", pa.int64()),
        ("feature_type", pa.string()),
        ("influence", pa.float64()),
        ("activation", pa.float64()),
        ("isLogit", pa.bool_()),
    ]
)
LINKS = pa.schema([("source", pa.string()), ("target", pa.string()), ("weight", pa.float64())])
_METADATA = TypeAdapter(GraphMetadata)


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


class Graph(NamedTuple):
    """One graph file, columnar: `nodes` as NODES (layer as text), `links` as LINKS."""

    metadata: Mapping[str, Any]
    nodes_exceeded: bool | None
    nodes: pa.Table
    links: pa.Table


class GraphRows(NamedTuple):
    graph: dict
    nodes: pa.Table
    links: pa.Table


def _int(value) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _first(*values):
    return next((v for v in values if v is not None), None)


def endpoint_from_id(node_id: str) -> Endpoint | None:
    """Parse a node id by its shape; None when it has none of the known shapes."""
    if m := NEURON_ID.match(node_id):
        return Endpoint("neuron", int(m[1]), int(m[2]), int(m[3]))
    if m := TOKEN_ID.match(node_id):
        return Endpoint("embedding" if m[1] == "E" else "logit", None, int(m[2]), int(m[3]))
    return None


def classify(node: dict) -> Endpoint:
    """The endpoint of one node given as a dict (missing keys read as None)."""
    if node.get("feature_type") == "mlp_neuron":
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


_NONE = type(None)
_REQUIRED = object()  # `_column` default: the key must be present
_NODE_TYPES: dict[str, set[type]] = {  # what the pydantic format accepts without converting, per node field
    "feature": {int, _NONE},
    "ctx_idx": {int, _NONE},
    "layer": {int, str, _NONE},
    "feature_type": {str, _NONE},
    "influence": {float, int, _NONE},
    "activation": {float, int, _NONE},
}


def _column(items: list, key: str, types: set, arrow: pa.DataType, default=None) -> pa.Array | None:
    """`key` of every item as an Arrow column; None when an item lacks a required key or holds a
    value of another type (bool is not int here, as in the pydantic format)."""
    try:  # map over C methods: a fraction of a comprehension's time (items are dicts: checked by the caller)
        values = list(map(itemgetter(key), items) if default is _REQUIRED else map(dict.get, items, repeat(key), repeat(default)))
    except KeyError:
        return None
    seen = set(map(type, values))
    if not seen <= types:
        return None
    if arrow == pa.string() and int in seen:  # int layers (raw output) become text, as viewer output has them
        values = [str(v) if type(v) is int else v for v in values]
    try:
        return pa.array(values, arrow)
    except (OverflowError, pa.ArrowInvalid):  # an int beyond the column's type: the format's range check says so
        return None


def _read_columnar(data: bytes) -> Graph | None:
    """The fast path: orjson, then one list per column (no per-link objects kept, no validator per
    link); None when the file needs pydantic's judgement (invalid JSON or NaN, a value pydantic would
    convert or refuse, an explicit null where only absence is allowed)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict or type(doc.get("nodes")) is not list or type(doc.get("links")) is not list:
        return None
    nodes, links = doc["nodes"], doc["links"]
    if not {type(n) for n in nodes} <= {dict} or not {type(link) for link in links} <= {dict}:
        return None
    if doc.get("nodes_exceeded") not in (None, True, False) or type(doc.get("metadata", {})) is not dict:
        return None
    node_columns = {"node_id": _column(nodes, "node_id", {str}, pa.string(), _REQUIRED)}
    for key, types in _NODE_TYPES.items():
        node_columns[key] = _column(nodes, key, types, pa.string() if key == "layer" else NODES.field(key).type)
    node_columns["isLogit"] = _column(nodes, "isLogit", {bool}, pa.bool_(), False)
    link_columns = {
        "source": _column(links, "source", {str}, pa.string(), _REQUIRED),
        "target": _column(links, "target", {str}, pa.string(), _REQUIRED),
        "weight": _column(links, "weight", {float, int}, pa.float64(), _REQUIRED),
    }
    if any(c is None for c in (*node_columns.values(), *link_columns.values())):
        return None
    if any(pc.min(node_columns[k]).as_py() is not None and pc.min(node_columns[k]).as_py() < 0 for k in ("feature", "ctx_idx")):
        return None  # a negative index or position: the pydantic format rejects it with its record
    try:
        metadata = _METADATA.validate_python(doc["metadata"]) if "metadata" in doc else {}
    except ValidationError:
        return None  # judged by the file's pydantic format, whose error names the path from the file's root
    return Graph(metadata, doc.get("nodes_exceeded"), pa.table(node_columns).select(NODES.names), pa.table(link_columns))


def read_graph(data: bytes) -> Graph:
    """One graph file's bytes, columnar. Raises pydantic's ValidationError (with the record) when invalid."""
    return _read_columnar(data) or _read_checked(data)


def _read_checked(data: bytes) -> Graph:
    """The pydantic path: slower (Python objects per link), the judge of files the fast path declines."""
    checked = GRAPH_FILE.validate_json(data)
    nodes = [{**n, "layer": None if n.get("layer") is None else str(n["layer"])} for n in checked["nodes"]]
    return Graph(
        checked.get("metadata", {}),
        checked.get("nodes_exceeded"),
        pa.Table.from_pylist(nodes, NODES),
        pa.Table.from_pylist(checked["links"], LINKS),
    )


def _shape_error(record: str, layer: int | None, feature: int | None, shape: tuple[int, int]) -> GraphError:
    return GraphError(record, f"neuron L{layer}/N{feature} is outside the atlas shape {shape[0]} x {shape[1]}")


def _in_shape(ep: Endpoint, shape: tuple[int, int]) -> bool:
    if ep.kind != "neuron":
        return True
    return ep.layer is not None and ep.feature is not None and 0 <= ep.layer < shape[0] and 0 <= ep.feature < shape[1]


class _Endpoints:
    """Endpoint columns (kind code, layer, feature, position) for the nodes, then dangling link ends."""

    def __init__(self, n: int):
        self.kind = np.zeros(n, np.int8)
        self.layer, self.feature, self.pos = (np.zeros(n, np.int64) for _ in range(3))
        self.valid = {name: np.zeros(n, bool) for name in ("layer", "feature", "pos")}
        self.extra: list[Endpoint] = []

    def set(self, i: int, ep: Endpoint) -> None:
        self.kind[i] = KINDS.index(ep.kind)
        for name in ("layer", "feature", "pos"):
            value = getattr(ep, name)
            self.valid[name][i] = value is not None
            getattr(self, name)[i] = value or 0

    def add(self, ep: Endpoint) -> int:
        """A dangling link end; returns its endpoint index."""
        self.extra.append(ep)
        return len(self.kind) + len(self.extra) - 1

    def columns(self) -> tuple[np.ndarray, list[pa.Array]]:
        """(is_neuron, [kind, layer, feature, pos] as Arrow) over nodes and dangling ends."""
        ends = _Endpoints(len(self.extra))
        for i, ep in enumerate(self.extra):
            ends.set(i, ep)
        kind = np.concatenate([self.kind, ends.kind])
        out = [pa.array(KINDS).take(pa.array(kind))]
        for name, t in (("layer", pa.int16()), ("feature", pa.int64()), ("pos", pa.int32())):
            values = np.concatenate([getattr(self, name), getattr(ends, name)])
            valid = np.concatenate([self.valid[name], ends.valid[name]])
            out.append(pa.array(values, t, mask=~valid))
        return kind == 0, out


def _classify_nodes(nodes: pa.Table, shape: tuple[int, int]) -> _Endpoints:
    """Endpoints of the nodes: mlp_neuron rows with layer, feature and position as arrays, the rest
    (embeddings, logits, other producers' kinds: a few per graph) one by one with `classify`."""
    n = nodes.num_rows
    ends = _Endpoints(n)
    text = nodes["layer"]
    numeric = pc.fill_null(pc.match_substring_regex(text, r"^-?\d+$"), False)
    layer = pc.cast(pc.if_else(numeric, text, None), pa.int64())
    fast = pc.and_(
        pc.equal(nodes["feature_type"], "mlp_neuron"),
        pc.and_(numeric, pc.and_(pc.is_valid(nodes["feature"]), pc.is_valid(nodes["ctx_idx"]))),
    )
    fast = pc.fill_null(fast, False).to_numpy(zero_copy_only=False)
    ends.layer[fast] = layer.to_numpy(zero_copy_only=False)[fast]
    ends.feature[fast] = nodes["feature"].to_numpy(zero_copy_only=False)[fast]
    ends.pos[fast] = nodes["ctx_idx"].to_numpy(zero_copy_only=False)[fast]
    for name in ("layer", "feature", "pos"):
        ends.valid[name][fast] = True
    out_of_shape = fast & ~((ends.layer >= 0) & (ends.layer < shape[0]) & (ends.feature >= 0) & (ends.feature < shape[1]))
    non_finite = {name: ~np.isfinite(nodes[name].fill_null(0.0).to_numpy(zero_copy_only=False)) for name in ("influence", "activation")}
    first_bad = _first_true(out_of_shape | non_finite["influence"] | non_finite["activation"], n)
    ids = nodes["node_id"]
    slow = np.flatnonzero(~fast)
    for i, row in zip(slow, nodes.take(pa.array(slow, pa.int64())).to_pylist(), strict=False):
        if i > first_bad:
            break
        ep = classify(row)
        if not _in_shape(ep, shape):
            raise _shape_error(f"nodes[{i}] {row['node_id']!r}", ep.layer, ep.feature, shape)
        ends.set(int(i), ep)
    if first_bad < n:
        record = f"nodes[{first_bad}] {ids[first_bad].as_py()!r}"
        for name, bad in non_finite.items():
            if bad[first_bad]:  # NaN and Infinity parse as JSON numbers in Python; a sum over them is lost
                raise GraphError(record, f"{name} is not finite ({nodes[name][first_bad].as_py()})")
        raise _shape_error(record, int(ends.layer[first_bad]), int(ends.feature[first_bad]), shape)
    return ends


def _first_true(mask: np.ndarray, default: int) -> int:
    return int(np.argmax(mask)) if mask.any() else default


def _link_ends(links: pa.Table, ids: pa.Array, ends: _Endpoints, shape: tuple[int, int]) -> tuple[dict, int]:
    """Endpoint index of each link's source and target, and the number of links with an end that is
    no node. A node id given twice means its last node; an id that is no node gets a dangling
    endpoint parsed from its shape (one per distinct id)."""
    n = len(ids)
    reversed_ids = ids.take(pa.array(np.arange(n - 1, -1, -1)))
    dangling: dict[str, int] = {}
    sides, missing = {}, np.zeros(links.num_rows, bool)
    for side in ("source", "target"):
        found = pc.index_in(links[side], value_set=reversed_ids)
        index = (n - 1 - pc.fill_null(found, n).to_numpy(zero_copy_only=False)).astype(np.int64)
        if found.null_count:
            names, absent = links[side], pc.is_null(found).to_numpy(zero_copy_only=False)
            missing |= absent
            for i in np.flatnonzero(absent):
                x = names[int(i)].as_py()
                if x not in dangling:
                    ep = endpoint_from_id(x)
                    if ep is None:
                        raise GraphError(f"links[{i}]", f"{side} {x!r} is not a node and has no neuron/E/L id shape")
                    if not _in_shape(ep, shape):
                        raise _shape_error(f"links[{i}]", ep.layer, ep.feature, shape)
                    dangling[x] = ends.add(ep)
                index[i] = dangling[x]
        sides[side] = index
    return sides, int(missing.sum())


def to_rows(graph: Graph, num_layers: int, neurons_per_layer: int) -> GraphRows:
    """Rows for one graph (without atlas/batch/graph key, which the job adds). Raises GraphError."""
    shape = (num_layers, neurons_per_layer)
    nodes, links = graph.nodes, graph.links
    n_nodes = nodes.num_rows
    ends = _classify_nodes(nodes, shape)
    sides, dangling = _link_ends(links, nodes["node_id"].combine_chunks(), ends, shape)
    is_neuron, columns = ends.columns()
    layer = columns[1].fill_null(-1).to_numpy(zero_copy_only=False)
    src, tgt = sides["source"], sides["target"]
    position = columns[3].fill_null(0).to_numpy(zero_copy_only=False)
    neuron_link = is_neuron[src] & is_neuron[tgt]
    backwards = neuron_link & ((layer[src] >= layer[tgt]) | (position[tgt] < position[src]))
    weight = links["weight"].combine_chunks()
    non_finite = ~np.isfinite(weight.to_numpy(zero_copy_only=False))
    i = _first_true(backwards | non_finite, -1)
    if i >= 0 and non_finite[i]:
        raise GraphError(f"links[{i}]", f"weight is not finite ({weight[i].as_py()}): it would poison every sum of its edge")
    if i >= 0:
        raise GraphError(
            f"links[{i}]",
            f"neuron link {links['source'][i].as_py()} -> {links['target'][i].as_py()} does not go to a later layer "
            "at the same or a later position",
        )
    link_columns = {
        f"{prefix}_{name}": col.take(pa.array(idx))
        for prefix, idx in (("src", src), ("tgt", tgt))
        for name, col in zip(("kind", "layer", "feature", "pos"), columns, strict=False)
    }
    link_columns["weight"] = weight
    node_columns = {name: col.slice(0, n_nodes) for name, col in zip(("kind", "layer", "feature", "position"), columns, strict=False)}
    other = pa.array(ends.kind == KINDS.index("other"))
    node_columns["influence"] = nodes["influence"].combine_chunks()
    node_columns["activation"] = nodes["activation"].combine_chunks()
    node_columns["node_id"] = pc.if_else(other, nodes["node_id"].combine_chunks(), pa.scalar(None, pa.string()))
    node_columns["feature_type"] = pc.if_else(other, nodes["feature_type"].combine_chunks(), pa.scalar(None, pa.string()))

    meta = graph.metadata
    gen = meta.get("generation_settings") or {}
    exceeded = graph.nodes_exceeded
    row = {
        "slug": meta.get("slug"),
        "scan": meta.get("scan"),
        "prompt": meta.get("prompt"),
        "prompt_tokens": meta.get("prompt_tokens") or [],
        "corpus_index": meta.get("corpus_index"),
        "node_threshold": _first(meta.get("node_threshold"), gen.get("node_threshold")),
        "metric_value": gen.get("metric_value"),
        "target_position": _first(meta.get("target_position"), gen.get("target_position")),
        "nodes_exceeded": bool(exceeded if exceeded is not None else gen.get("nodes_exceeded")),
        "node_count": n_nodes,
        "neuron_count": int(is_neuron[:n_nodes].sum()),
        "link_count": links.num_rows,
        "dangling_links": dangling,
    }
    return GraphRows(row, pa.table(node_columns), pa.table(link_columns))
