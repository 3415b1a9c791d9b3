"""Turn one attribution graph file into lake rows (graphs, graph_nodes, graph_links).

Reading is columnar: msgspec decodes into typed structs (types checked as it parses), each node and
link field becomes one Arrow column, and classification, shape checks and the link endpoints are array
operations. A file the fast path cannot take exactly (invalid JSON or NaN, a value the pydantic
format would convert or refuse, an explicit null where only absence is allowed) goes through
pydantic instead, which accepts what it always accepted and rejects with the record's JSON path.

Node kinds come from `feature_type` / `isLogit` / the id's shape, never from the layer number: MLP
neurons (`mlp_neuron`), transcoder features (`cross layer transcoder`, per-layer transcoders), error
nodes (`mlp reconstruction error`), embeddings, logits, and `other` for kinds no rule knows (kept raw).
Only the atlas's unit kind (`neuron` or `transcoder`) makes units; a graph holding nodes of the other
unit kind is rejected, never landed with its units silently dropped. Unit coordinates:
- neuron: layer / feature / ctx_idx, and a neuron-shaped `node_id` that says otherwise is a reject;
- transcoder: the per-layer index from `node_id` "{layer}_{index}_{pos}" (`feature` is an encoded id
  whose encoding follows the producer's version), layer and position checked against the fields;
- embedding: the token id from `node_id` "E_{token}_{pos}" (circuit-tracer writes feature = pos);
- logit: `feature` (the token id; circuit-tracer's logit ids are neuron-shaped: never parsed as one).
Links: a zero-weight link is dropped and counted (`graphs.zero_weight_links`; no producer's edge
statistics use one); a link naming an id that two different nodes hold (circuit-tracer's error id
"0_{layer}_{pos}" equals a layer-0 feature's) cannot be attributed: it is kept with endpoint kind
`ambiguous` and counted (`graphs.ambiguous_links`), never merged into a unit link. A link endpoint
missing from `nodes` is kept when its id has a known shape (neuron "{layer}_{neuron}_{pos}" in neuron
atlases, embedding "E_{tok}_{pos}", logit "L_{tok}_{pos}"), as the research aggregator did, and
counted in `graphs.dangling_links`. Weights, influences and activations must be finite (Python's
JSON reads NaN and Infinity); a non-zero unit link must go to a later layer at the same or a later
position. A graph that breaks a rule is rejected whole (a partial graph would skew appearance
counts): GraphError names the record, and when a graph breaks several rules it is the first in file
order (the wrong unit kind is judged first).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from operator import attrgetter
from typing import Any, NamedTuple

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import TypeAdapter, ValidationError

from circuitlake.formats.graph import FAST_GRAPH_FILE, GRAPH_FILE, GraphMetadata
from circuitlake.registry import UNITS

NEURON_ID = re.compile(r"^(\d+)_(\d+)_(\d+)$")
TOKEN_ID = re.compile(r"^([EL])_(\d+)_(\d+)$")
KEY_CLERP = r"^\s*L?\d+\s*[/_]\s*[NF]?\d+\s*$"  # a clerp that only spells the unit's key ("L10/N2427") is no label
# feature_type spellings, compared lowercased with '_' and '-' read as spaces
NEURON_TYPES = {"mlp neuron", "neuron"}
TRANSCODER_TYPES = {
    "cross layer transcoder",
    "clt",
    "transcoder",
    "per layer transcoder",
    "plt",
    "single layer transcoder",
    "skip transcoder",
}
ERROR_TYPES = {"mlp reconstruction error", "mlp error", "reconstruction error", "error"}
KINDS = ("neuron", "transcoder", "embedding", "logit", "error", "ambiguous", "other")  # endpoint kind codes index this

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
        ("clerp", pa.string()),
    ]
)
LINKS = pa.schema([("source", pa.string()), ("target", pa.string()), ("weight", pa.float64())])
_METADATA = TypeAdapter(GraphMetadata)


class GraphError(ValueError):
    """A rule the graph breaks; `record` is where (e.g. 'links[17]')."""

    def __init__(self, record: str, reason: str):
        super().__init__(f"{record}: {reason}")
        self.record, self.reason = record, reason


class Shape(NamedTuple):
    """What an atlas accepts: `layers` x `units` per layer of kind `unit` (neuron | transcoder)."""

    layers: int
    units: int
    unit: str = "neuron"
    atlas: str = "this atlas"


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


class ManyRows(NamedTuple):
    graphs: list[dict]  # one row per graph, in order
    nodes: pa.Table  # column `graph`: the row's graph (its index in `graphs`)
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


def kind_of(feature_type: str | None, is_logit: bool | None = None) -> str | None:
    """The node kind `feature_type` names (None when it is absent: the id's shape decides)."""
    ft = (feature_type or "").lower().replace("_", " ").replace("-", " ").strip()
    if is_logit or ft == "logit":
        return "logit"
    if not ft:
        return None
    if ft == "embedding":
        return "embedding"
    if ft in NEURON_TYPES:
        return "neuron"
    if ft in TRANSCODER_TYPES:
        return "transcoder"
    if ft in ERROR_TYPES:
        return "error"
    return "other"


def _contradiction(node: dict, kind: str, parsed: Endpoint | None, layer, feature, pos) -> GraphError:
    letter = "N" if kind == "neuron" else "F"
    said = f"L{parsed.layer}/{letter}{parsed.feature} at position {parsed.pos}" if parsed else "nothing (it is not {layer}_{index}_{pos})"
    return GraphError(
        f"node {node['node_id']!r}",
        f"{kind} node_id says {said} but layer/feature/ctx_idx say L{layer}/{letter}{feature} at position {pos}",
    )


def classify(node: dict) -> Endpoint:
    """The endpoint of one node given as a dict (missing keys read as None)."""
    kind = kind_of(node.get("feature_type"), node.get("isLogit"))
    parsed = endpoint_from_id(node["node_id"])
    layer, pos = _int(node.get("layer")), node.get("ctx_idx")
    if kind is None:  # no feature_type: the id's shape decides
        kind = parsed.kind if parsed else "other"
    if kind in ("other", "error"):
        return Endpoint(kind, layer, node.get("feature"), pos)
    if kind == "transcoder":  # the per-layer index is in the id; `feature` is an encoded id
        if (
            parsed is None
            or parsed.kind != "neuron"
            or (layer is not None and layer != parsed.layer)
            or (pos is not None and pos != parsed.pos)
        ):
            raise _contradiction(node, kind, parsed if parsed and parsed.kind == "neuron" else None, layer, node.get("feature"), pos)
        return parsed._replace(kind="transcoder")
    if kind == "neuron":
        ep = Endpoint(
            "neuron",
            _first(layer, parsed.layer if parsed else None),
            _first(node.get("feature"), parsed.feature if parsed else None),
            _first(pos, parsed.pos if parsed else None),
        )
        if ep.layer is None or ep.feature is None:
            raise GraphError(f"node {node['node_id']!r}", "neuron node without a layer or neuron index")
        if parsed and parsed.kind == "neuron" and parsed != ep:  # a neuron is never stored at another index than its id says
            raise _contradiction(node, kind, parsed, ep.layer, ep.feature, ep.pos)
        return ep
    token = parsed.feature if parsed and kind == "embedding" and parsed.kind == "embedding" else None
    return Endpoint(
        kind, None, _first(token, node.get("feature"), parsed.feature if parsed else None), _first(pos, parsed.pos if parsed else None)
    )


def _column(items: list, key: str, arrow: pa.DataType) -> pa.Array | None:
    """`key` of every decoded item as an Arrow column; None when a value is beyond the column's type
    (the format's range check says so)."""
    values = list(map(attrgetter(key), items))  # map over a C getter: a fraction of a comprehension's time
    if key == "layer":  # int layers (raw output) become text, as viewer output has them
        values = [str(v) if type(v) is int else v for v in values]
    try:
        return pa.array(values, arrow)
    except (OverflowError, pa.ArrowInvalid):
        return None


def struct_table(items: list, schema: pa.Schema) -> pa.Table | None:
    """Decoded nodes or links (FastGraphNode, FastGraphLink) as a table of `schema` (NODES, LINKS); None
    when one needs pydantic's judgement (a value beyond a column's type or below the format's range)."""
    return _table({f.name: _column(items, f.name, f.type) for f in schema}, schema)


def _read_columnar(data: bytes) -> Graph | None:
    """The fast path: msgspec decodes straight into typed structs (FAST_GRAPH_FILE: the types the pydantic
    format takes without converting), then one Arrow column per field (no validator per link); None when
    the file needs pydantic's judgement (invalid JSON or NaN, a value pydantic would convert or refuse, an
    explicit null where only absence is allowed, a value beyond a column's range)."""
    try:
        doc = FAST_GRAPH_FILE.decode(data)
    except (msgspec.DecodeError, RecursionError):  # RecursionError: nested deeper than msgspec goes
        return None
    nodes_table, links_table = struct_table(doc.nodes, NODES), struct_table(doc.links, LINKS)
    if nodes_table is None or links_table is None:
        return None
    try:
        metadata = {} if doc.metadata is msgspec.UNSET else _METADATA.validate_json(bytes(doc.metadata))
    except ValidationError:
        return None  # judged by the file's pydantic format, whose error names the path from the file's root
    return Graph(metadata, doc.nodes_exceeded, nodes_table, links_table)


def _table(columns: dict[str, pa.Array | None], schema: pa.Schema) -> pa.Table | None:
    """The columns as a table of `schema`; None when one needs pydantic's judgement (beyond its type,
    or a feature or position below the format's range)."""
    if any(c is None for c in columns.values()):
        return None
    for key, low in (("feature", -1), ("ctx_idx", 0)):
        if key in columns and (least := pc.min(columns[key]).as_py()) is not None and least < low:
            return None  # the pydantic format rejects it with its record
    return pa.table(columns).select(schema.names)


def read_graph(data: bytes) -> Graph:
    """One graph file's bytes, columnar. Raises pydantic's ValidationError (with the record) when invalid."""
    return _read_columnar(data) or _read_checked(data)


def checked_nodes(nodes: list) -> pa.Table:
    """Nodes the pydantic format validated, as NODES (layers as text, as the fast path has them)."""
    return pa.Table.from_pylist([{**n, "layer": None if n.get("layer") is None else str(n["layer"])} for n in nodes], NODES)


def _read_checked(data: bytes) -> Graph:
    """The pydantic path: slower (Python objects per link), the judge of files the fast path declines."""
    checked = GRAPH_FILE.validate_json(data)
    return Graph(
        checked.get("metadata", {}),
        checked.get("nodes_exceeded"),
        checked_nodes(checked["nodes"]),
        pa.Table.from_pylist(checked["links"], LINKS),
    )


def _shape_error(record: str, ep: Endpoint, shape: Shape) -> GraphError:
    what = "neuron" if ep.kind == "neuron" else "feature"
    key = f"L{ep.layer}/{'N' if ep.kind == 'neuron' else 'F'}{ep.feature}"
    return GraphError(record, f"{what} {key} is outside the atlas shape {shape.layers} x {shape.units}")


def _in_shape(ep: Endpoint, shape: Shape) -> bool:
    if ep.kind != shape.unit:
        return True
    return ep.layer is not None and ep.feature is not None and 0 <= ep.layer < shape.layers and 0 <= ep.feature < shape.units


def wrong_unit_error(record: str, feature_type: str, count: int, shape: Shape) -> GraphError:
    other = "transcoder" if shape.unit == "neuron" else "neuron"
    return GraphError(
        record,
        f"{count} {feature_type!r} nodes: atlas {shape.atlas} holds {UNITS[shape.unit]}; "
        f"add an atlas with --unit {other} for these graphs (`circuitlake atlas add NAME --unit {other} ...`)",
    )


class _Endpoints:
    """Endpoint columns (kind code, layer, feature, position) for the nodes, then extra link ends
    (dangling ids, and the one `ambiguous` end)."""

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

    def key(self, i: int) -> tuple:
        return (int(self.kind[i]),) + tuple(int(getattr(self, n)[i]) if self.valid[n][i] else None for n in ("layer", "feature", "pos"))

    def add(self, ep: Endpoint) -> int:
        """An extra link end; returns its endpoint index."""
        self.extra.append(ep)
        return len(self.kind) + len(self.extra) - 1

    def columns(self) -> list[pa.Array]:
        """[kind, layer, feature, pos] as Arrow over nodes and extra ends."""
        ends = _Endpoints(len(self.extra))
        for i, ep in enumerate(self.extra):
            ends.set(i, ep)
        kind = np.concatenate([self.kind, ends.kind])
        out = [pa.array(KINDS).take(pa.array(kind))]
        for name, t in (("layer", pa.int16()), ("feature", pa.int64()), ("pos", pa.int32())):
            values = np.concatenate([getattr(self, name), getattr(ends, name)])
            valid = np.concatenate([self.valid[name], ends.valid[name]])
            out.append(pa.array(values, t, mask=~valid))
        return out

    def codes(self) -> np.ndarray:
        return np.concatenate([self.kind, np.array([KINDS.index(e.kind) for e in self.extra], np.int8)])


def _normalized_types(feature_type: pa.ChunkedArray) -> pa.Array:
    """feature_type lowercased, '_' and '-' read as spaces (null stays null)."""
    ft = pc.utf8_lower(feature_type.combine_chunks())
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(ft, r"[_-]", " "))


def _classify_nodes(nodes: pa.Table, shape: Shape) -> _Endpoints:
    """Endpoints of the nodes: the atlas's unit nodes as arrays (neurons from layer / feature / ctx_idx
    with their id checked, transcoder features from their id), the rest (embeddings, logits, errors,
    other kinds: a few per graph) one by one with `classify`."""
    n = nodes.num_rows
    ends = _Endpoints(n)
    ids = nodes["node_id"].combine_chunks()
    ft = _normalized_types(nodes["feature_type"])
    logit = pc.fill_null(nodes["isLogit"].combine_chunks(), False).to_numpy(zero_copy_only=False)
    parts = pc.extract_regex(ids, r"^(?P<l>\d+)_(?P<f>\d+)_(?P<p>\d+)$")  # NEURON_ID, vectorised
    shaped = pc.is_valid(parts).to_numpy(zero_copy_only=False)
    kinds = {
        k: pc.fill_null(pc.is_in(ft, pa.array(sorted(v))), False).to_numpy(zero_copy_only=False) & ~logit
        for k, v in (("neuron", NEURON_TYPES), ("transcoder", TRANSCODER_TYPES))
    }
    kinds["neuron"] |= pc.is_null(ft).to_numpy(zero_copy_only=False) & shaped & ~logit  # no feature_type: a neuron id is a neuron
    other = "transcoder" if shape.unit == "neuron" else "neuron"
    if kinds[other].any():  # a graph of another unit kind: rejected whole, never landed without its units
        first = int(np.argmax(kinds[other]))
        named = nodes["feature_type"][first].as_py() or "neuron-shaped id without feature_type"
        raise wrong_unit_error(f"nodes[{first}] {ids[first].as_py()!r}", named, int(kinds[other].sum()), shape)
    text = nodes["layer"]
    numeric = pc.fill_null(pc.match_substring_regex(text, r"^-?\d+$"), False)
    layer = pc.cast(pc.if_else(numeric, text, None), pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    numeric = numeric.to_numpy(zero_copy_only=False)
    parsed = {
        k: pc.cast(pc.if_else(pc.is_valid(parts), pc.struct_field(parts, k), "0"), pa.int64()).to_numpy(zero_copy_only=False)
        for k in ("l", "f", "p")
    }
    feature = nodes["feature"].combine_chunks()
    ctx = nodes["ctx_idx"].combine_chunks()
    has_feature, has_ctx = (pc.is_valid(c).to_numpy(zero_copy_only=False) for c in (feature, ctx))
    feature, ctx = (c.fill_null(0).to_numpy(zero_copy_only=False) for c in (feature, ctx))
    if shape.unit == "neuron":
        fast = kinds["neuron"] & numeric & has_feature & has_ctx
        fast &= ~shaped | ((parsed["l"] == layer) & (parsed["f"] == feature) & (parsed["p"] == ctx))  # contradictions: slow path names them
        ends.layer[fast], ends.feature[fast], ends.pos[fast] = layer[fast], feature[fast], ctx[fast]
    else:
        fast = kinds["transcoder"] & shaped & (~numeric | (layer == parsed["l"])) & (~has_ctx | (ctx == parsed["p"]))
        ends.layer[fast], ends.feature[fast], ends.pos[fast] = parsed["l"][fast], parsed["f"][fast], parsed["p"][fast]
    ends.kind[fast] = KINDS.index(shape.unit)
    for name in ("layer", "feature", "pos"):
        ends.valid[name][fast] = True
    out_of_shape = fast & ~((ends.layer >= 0) & (ends.layer < shape.layers) & (ends.feature >= 0) & (ends.feature < shape.units))
    non_finite = {name: ~np.isfinite(nodes[name].fill_null(0.0).to_numpy(zero_copy_only=False)) for name in ("influence", "activation")}
    first_bad = _first_true(out_of_shape | non_finite["influence"] | non_finite["activation"], n)
    slow = np.flatnonzero(~fast)
    for i, row in zip(slow, nodes.take(pa.array(slow, pa.int64())).to_pylist(), strict=False):
        if i > first_bad:
            break
        try:
            ep = classify(row)
        except GraphError as e:
            raise GraphError(f"nodes[{i}] {row['node_id']!r}", e.reason) from None
        if ep.kind in UNITS and ep.kind != shape.unit:
            raise wrong_unit_error(
                f"nodes[{i}] {row['node_id']!r}", row["feature_type"] or "neuron-shaped id without feature_type", 1, shape
            )
        if not _in_shape(ep, shape):
            raise _shape_error(f"nodes[{i}] {row['node_id']!r}", ep, shape)
        ends.set(int(i), ep)
    if first_bad < n:
        record = f"nodes[{first_bad}] {ids[first_bad].as_py()!r}"
        for name, bad in non_finite.items():
            if bad[first_bad]:  # NaN and Infinity parse as JSON numbers in Python; a sum over them is lost
                raise GraphError(record, f"{name} is not finite ({nodes[name][first_bad].as_py()})")
        raise _shape_error(record, Endpoint(shape.unit, int(ends.layer[first_bad]), int(ends.feature[first_bad]), None), shape)
    return ends


def _first_true(mask: np.ndarray, default: int) -> int:
    return int(np.argmax(mask)) if mask.any() else default


def _ambiguous_keys(keys: np.ndarray, ends: _Endpoints) -> pa.Array:
    """Node keys (graph, id) that two nodes with different endpoints hold (circuit-tracer's error id
    "0_{layer}_{pos}" next to the layer-0 feature of that index): links naming them cannot be
    attributed. The same node given twice is no ambiguity (its last copy counts)."""
    array = pa.array(keys)
    counts = pc.value_counts(array)
    repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    if not len(repeated):
        return repeated
    held: dict[int, set] = {}
    for i in np.flatnonzero(pc.is_in(array, value_set=repeated).to_numpy(zero_copy_only=False)):
        held.setdefault(int(keys[i]), set()).add(ends.key(int(i)))
    return pa.array([k for k, found in held.items() if len(found) > 1], pa.int64())


class RowBuilder:
    """The rows of one or more graphs, in file order: the nodes of all are classified at once (graph
    `node_graph[i]` holds node i, 0 for a single graph), then each chunk of links (`links`) becomes
    graph_links rows, and each graph's row counts its own. A link names a node of its own graph only:
    node ids are matched as (graph, id) keys. Rows carry their graph's ordinal in column `graph`.
    Rule checks are those of `to_rows`; when several graphs are built at once, a GraphError only says
    that one of them broke a rule: build each alone to learn which, with its record."""

    def __init__(self, nodes: pa.Table, shape: Shape, node_graph: np.ndarray | None = None, graphs: int = 1):
        self.shape, self.nodes, self.graphs = shape, nodes, graphs
        self.node_graph = np.zeros(nodes.num_rows, np.int64) if node_graph is None else node_graph
        self.ends = _classify_nodes(nodes, shape)
        encoded = nodes["node_id"].combine_chunks().dictionary_encode()
        self.names = encoded.dictionary  # each distinct id once; a key is (its index here, graph)
        keys = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64) * graphs + self.node_graph
        self.reversed_keys = pa.array(keys[::-1])  # index_in finds the last node of a key
        self.ambiguous_keys = _ambiguous_keys(keys, self.ends)
        self.ambiguous_end = self.ends.add(Endpoint("ambiguous", None, None, None)) if len(self.ambiguous_keys) else -1
        self.dangling: dict[str, int] = {}  # dangling id -> its endpoint (one per distinct id, over every chunk)
        self.counts = {k: np.zeros(graphs, np.int64) for k in ("link_count", "dangling_links", "ambiguous_links", "zero_weight_links")}
        kind = self.ends.kind[: nodes.num_rows]
        self.node_counts = {  # per graph, from the nodes alone
            "node_count": self._per_graph(self.node_graph),
            "neuron_count": self._per_graph(self.node_graph[kind == KINDS.index(shape.unit)]),
            "error_nodes": self._per_graph(self.node_graph[kind == KINDS.index("error")]),
        }

    def _per_graph(self, graph: np.ndarray) -> np.ndarray:
        return np.bincount(graph, minlength=self.graphs)

    def _link_ends(self, links: pa.Table, graph: np.ndarray, record: np.ndarray) -> dict[str, np.ndarray]:
        """Endpoint index of each link's source and target. A node id given twice in a graph means its
        last node; an id that is no node of the link's graph gets a dangling endpoint parsed from its
        shape; an ambiguous id gets the one `ambiguous` endpoint. `record[i]` is link i's index in its file."""
        n, shape, ends = self.nodes.num_rows, self.shape, self.ends
        sides, missing, unclear = {}, np.zeros(links.num_rows, bool), np.zeros(links.num_rows, bool)
        for side in ("source", "target"):
            name = pc.fill_null(pc.index_in(links[side], value_set=self.names), -1).to_numpy(zero_copy_only=False)
            keys = pa.array(np.where(name >= 0, name.astype(np.int64) * self.graphs + graph, -1))  # -1: an id no node of the chunk holds
            found = pc.index_in(keys, value_set=self.reversed_keys)
            index = (n - 1 - pc.fill_null(found, n).to_numpy(zero_copy_only=False)).astype(np.int64)
            if len(self.ambiguous_keys):
                hit = pc.is_in(keys, value_set=self.ambiguous_keys).to_numpy(zero_copy_only=False)
                index[hit] = self.ambiguous_end
                unclear |= hit
            if found.null_count:
                names, absent = links[side], pc.is_null(found).to_numpy(zero_copy_only=False)
                missing |= absent
                for i in np.flatnonzero(absent):
                    x = names[int(i)].as_py()
                    if x not in self.dangling:
                        ep = endpoint_from_id(x)
                        if ep is None:
                            raise GraphError(f"links[{record[i]}]", f"{side} {x!r} is not a node and has no neuron/E/L id shape")
                        if ep.kind == "neuron" and shape.unit != "neuron":
                            raise GraphError(
                                f"links[{record[i]}]",
                                f"{side} {x!r} is not a node: in transcoder graphs that id shape may be a feature, an error or a logit",
                            )
                        if not _in_shape(ep, shape):
                            raise _shape_error(f"links[{record[i]}]", ep, shape)
                        self.dangling[x] = ends.add(ep)
                    index[i] = self.dangling[x]
            sides[side] = index
        self.counts["dangling_links"] += self._per_graph(graph[missing])
        self.counts["ambiguous_links"] += self._per_graph(graph[unclear])
        return sides

    def links(self, links: pa.Table, offset: int = 0, graph: np.ndarray | None = None) -> pa.Table:
        """graph_links rows of a chunk of links (LINKS): of one graph, starting at its link `offset`, or,
        with `graph` (each link's graph, non-decreasing), whole graphs' links one after another. Raises GraphError."""
        unit = self.shape.unit
        graph = np.zeros(links.num_rows, np.int64) if graph is None else graph
        starts = np.searchsorted(graph, np.arange(self.graphs))  # each graph's first link in the chunk
        weight = links["weight"].combine_chunks()
        kept = pc.not_equal(weight, 0.0)  # zero-weight links carry no attribution: dropped, counted
        keep = kept.to_numpy(zero_copy_only=False)
        record = offset + (np.arange(len(keep)) - starts[graph])[keep]
        links, weight = links.filter(kept), weight.filter(kept)
        self.counts["zero_weight_links"] += self._per_graph(graph[~keep])
        graph = graph[keep]
        self.counts["link_count"] += self._per_graph(graph)
        sides = self._link_ends(links, graph, record)
        columns = self.ends.columns()
        is_unit = self.ends.codes() == KINDS.index(unit)
        layer = columns[1].fill_null(-1).to_numpy(zero_copy_only=False)
        src, tgt = sides["source"], sides["target"]
        position = columns[3].fill_null(0).to_numpy(zero_copy_only=False)
        unit_link = is_unit[src] & is_unit[tgt]
        backwards = unit_link & ((layer[src] >= layer[tgt]) | (position[tgt] < position[src]))
        non_finite = ~np.isfinite(weight.to_numpy(zero_copy_only=False))
        i = _first_true(backwards | non_finite, -1)
        if i >= 0 and non_finite[i]:
            raise GraphError(f"links[{record[i]}]", f"weight is not finite ({weight[i].as_py()}): it would poison every sum of its edge")
        if i >= 0:
            raise GraphError(
                f"links[{record[i]}]",
                f"{unit} link {links['source'][i].as_py()} -> {links['target'][i].as_py()} does not go to a later layer "
                "at the same or a later position",
            )
        link_columns = {
            f"{prefix}_{name}": col.take(pa.array(idx))
            for prefix, idx in (("src", src), ("tgt", tgt))
            for name, col in zip(("kind", "layer", "feature", "pos"), columns, strict=False)
        }
        link_columns["weight"] = weight
        link_columns["graph"] = pa.array(graph.astype(np.int32))
        return pa.table(link_columns)

    def node_rows(self) -> pa.Table:
        """graph_nodes rows: every node with its kind; raw id and type kept for kind `other`, the clerp
        for unit nodes whose clerp says more than the unit's key."""
        nodes, ends, n_nodes = self.nodes, self.ends, self.nodes.num_rows
        columns = ends.columns()
        node_columns = {name: col.slice(0, n_nodes) for name, col in zip(("kind", "layer", "feature", "position"), columns, strict=False)}
        other = pa.array(ends.kind == KINDS.index("other"))
        node_columns["influence"] = nodes["influence"].combine_chunks()
        node_columns["activation"] = nodes["activation"].combine_chunks()
        node_columns["node_id"] = pc.if_else(other, nodes["node_id"].combine_chunks(), pa.scalar(None, pa.string()))
        node_columns["feature_type"] = pc.if_else(other, nodes["feature_type"].combine_chunks(), pa.scalar(None, pa.string()))
        clerp = nodes["clerp"].combine_chunks()
        labeled = pc.and_(pa.array(ends.kind == KINDS.index(self.shape.unit)), pc.invert(pc.match_substring_regex(clerp, KEY_CLERP)))
        labeled = pc.and_(labeled, pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(clerp)), 0))
        node_columns["clerp"] = pc.if_else(pc.fill_null(labeled, False), clerp, pa.scalar(None, pa.string()))
        node_columns["graph"] = pa.array(self.node_graph.astype(np.int32))
        return pa.table(node_columns)

    def graph_row(self, meta: Mapping[str, Any], exceeded: bool | None, graph: int = 0) -> dict:
        """Graph `graph`'s row (once every chunk of links went through `links`)."""
        gen = meta.get("generation_settings") or {}
        return {
            "slug": meta.get("slug"),
            "scan": meta.get("scan"),
            "prompt": meta.get("prompt"),
            "prompt_tokens": meta.get("prompt_tokens") or [],
            "corpus_index": meta.get("corpus_index"),
            "node_threshold": _first(meta.get("node_threshold"), gen.get("node_threshold")),
            "metric_value": gen.get("metric_value"),
            "target_position": _first(meta.get("target_position"), gen.get("target_position")),
            "nodes_exceeded": bool(exceeded if exceeded is not None else gen.get("nodes_exceeded")),
            **{k: int(v[graph]) for k, v in (self.node_counts | self.counts).items()},
            **graph_info(meta),
        }


def graph_info(meta: Mapping[str, Any]) -> dict:
    """Provenance a producer writes in the metadata: the generator ("name version") and the transcoder set."""
    info = meta.get("info")
    info = info if isinstance(info, dict) else {}
    generator = info.get("generator")
    if isinstance(generator, dict):
        generator = " ".join(str(generator[k]) for k in ("name", "version") if generator.get(k) is not None) or None
    transcoders = info.get("transcoder_set") or info.get("source_set") or ",".join(meta.get("transcoder_list") or []) or None
    return {
        "generator": generator if isinstance(generator, str) else None,
        "transcoder_set": transcoders if isinstance(transcoders, str) else None,
    }


def many_rows(graphs: list[Graph], shape: Shape) -> ManyRows:
    """Rows for several graphs at once. Raises GraphError when any breaks a rule (build it alone for the
    record): per-graph work is a few dozen array operations, so many graphs share each one."""
    node_graph = np.repeat(np.arange(len(graphs)), [g.nodes.num_rows for g in graphs])
    link_graph = np.repeat(np.arange(len(graphs)), [g.links.num_rows for g in graphs])
    rows = RowBuilder(pa.concat_tables(g.nodes for g in graphs), shape, node_graph, len(graphs))
    links = rows.links(pa.concat_tables(g.links for g in graphs), graph=link_graph)
    return ManyRows([rows.graph_row(g.metadata, g.nodes_exceeded, i) for i, g in enumerate(graphs)], rows.node_rows(), links)


def to_rows(graph: Graph, num_layers: int, units_per_layer: int, unit: str = "neuron", atlas: str = "this atlas") -> GraphRows:
    """Rows for one graph (without atlas/batch/graph key, which the job adds). Raises GraphError with the record."""
    rows = many_rows([graph], Shape(num_layers, units_per_layer, unit, atlas))
    return GraphRows(rows.graphs[0], rows.nodes, rows.links)
