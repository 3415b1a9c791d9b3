"""Huge graph files in bounded memory: nodes first, then the links in chunks, each chunk's rows handed
on as soon as they are made.

circuit-tracer users report single graphs of 1.7 GB; parsed whole (Python objects per link)
that needs ~8x the file in RAM. Here the file is read in passes with ijson's C parser: `metadata`
(which producers write first, so this stops early), the `nodes` array, then `links` item by item,
`chunk_links` at a time; a top-level `nodes_exceeded` is looked for only when the file's tail names
it. Memory is one chunk plus the nodes, whatever the file's size. The rows and rejects are those of
`graph_rows.to_rows` (its checks run per chunk, in file order); a value the fast path would leave
to pydantic is judged by the same pydantic format, its record numbered from the file's start.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import ijson
import msgspec
import pyarrow as pa
from pydantic import TypeAdapter, ValidationError

from circuitlake.formats.graph import FastGraphLink, FastGraphNode, GraphLink, GraphMetadata, GraphNode
from circuitlake.ingest import sources
from circuitlake.ingest.graph_rows import LINKS, NODES, GraphError, RowBuilder, Shape, checked_nodes, struct_table

_NODES = TypeAdapter(list[GraphNode])
_LINKS = TypeAdapter(list[GraphLink])
_METADATA = TypeAdapter(GraphMetadata)
_FAST = {"nodes": list[FastGraphNode], "links": list[FastGraphLink]}


def _invalid(what: str, offset: int, error: ValidationError) -> GraphError:
    """A pydantic error inside a chunk as the whole file's record ('links.4000123.weight')."""
    first = error.errors()[0]
    index, *rest = first["loc"]
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return GraphError(".".join(str(p) for p in (what, offset + int(index), *rest)), f"{first['msg']}{more}")


def _columns(items: list, what: str, offset: int, schema: pa.Schema) -> pa.Table:
    """A chunk of node or link dicts as a table of `schema`; GraphError with the record when invalid."""
    try:  # the fast path's typed structs, from the parsed dicts
        table = struct_table(msgspec.convert(items, _FAST[what]), schema)
    except msgspec.ValidationError:
        table = None
    if table is not None:
        return table
    adapter = _NODES if what == "nodes" else _LINKS
    try:
        checked: list[dict] = adapter.validate_python(items)  # type: ignore[assignment]
    except ValidationError as e:
        raise _invalid(what, offset, e) from None
    return checked_nodes(checked) if what == "nodes" else pa.Table.from_pylist(checked, schema)


def _top_level(path: Path, key: str):
    """A top-level value (None when absent); stops reading once it is found."""
    raw, stream = sources.open_stream(path)
    with raw:
        return next(ijson.items(stream, key, use_float=True), None)


def _tail_mentions(path: Path, key: str) -> bool:
    """Whether the last 64 KiB of the content hold `key` (where a producer writes a key after `links`)."""
    raw, stream = sources.open_stream(path)
    with raw:
        if stream is raw:
            raw.seek(max(0, sources.content_size(path) - 65536))
            return key.encode() in raw.read()
    return True  # gzip cannot seek back cheaply: look with a full pass


def stream_rows(path: Path, shape: Shape, chunk_links: int = 200_000) -> Iterator[tuple[str, pa.Table | dict]]:
    """('graph_links', rows) per chunk of links, then ('graph_nodes', rows), then ('graph', row) last.
    Raises GraphError (a broken rule or an invalid value, with its record) or ijson's error for
    invalid JSON; rows already yielded then belong to a rejected graph."""
    try:
        metadata = _METADATA.validate_python(_top_level(path, "metadata") or {})
    except ValidationError as e:
        raise GraphError(".".join(["metadata", *map(str, e.errors()[0]["loc"])]), e.errors()[0]["msg"]) from None
    raw, stream = sources.open_stream(path)
    with raw:
        nodes = _columns(list(ijson.items(stream, "nodes.item", use_float=True)), "nodes", 0, NODES)
    rows = RowBuilder(nodes, shape)
    raw, stream = sources.open_stream(path)
    with raw:
        items = ijson.items(stream, "links.item", use_float=True)
        offset = 0
        while chunk := list(islice(items, chunk_links)):
            yield "graph_links", rows.links(_columns(chunk, "links", offset, LINKS), offset)
            offset += len(chunk)
    exceeded = _top_level(path, "nodes_exceeded") if _tail_mentions(path, "nodes_exceeded") else None
    if exceeded not in (None, True, False):
        raise GraphError("nodes_exceeded", "Input should be a valid boolean")
    yield "graph_nodes", rows.node_rows()
    yield "graph", rows.graph_row(metadata, exceeded)
