"""Wire format of a RelP attribution graph file (`graph_*.json[.gz]`, FORMATS.md section 1).

TypedDicts validated by pydantic-core straight from JSON bytes (about 6x faster than model
instances for thousands of links). Unknown fields are ignored; `layer` may be an int (raw output)
or a string (viewer output, where embeddings are "E" and logits carry str(highest layer + 1)).
Nodes are classified by `feature_type` / `isLogit` / id prefix, never by layer. `arrow_schema` is the
same fields for pyarrow's columnar JSON reader, the fast path that makes no Python object per link.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import ConfigDict, TypeAdapter, with_config
from typing_extensions import NotRequired, TypedDict

_LOOSE = ConfigDict(extra="ignore")


@with_config(_LOOSE)
class GenerationSettings(TypedDict, total=False):
    node_threshold: float | None
    metric_value: float | None
    target_position: int | None
    nodes_exceeded: bool | None


@with_config(_LOOSE)
class GraphMetadata(TypedDict, total=False):
    slug: str | None
    scan: str | None
    prompt: str | None
    prompt_tokens: list[str]
    node_threshold: float | None
    target_position: int | None
    corpus_index: int | None
    generation_settings: GenerationSettings


@with_config(_LOOSE)
class GraphNode(TypedDict):
    node_id: str
    feature: NotRequired[int | None]
    layer: NotRequired[int | str | None]
    ctx_idx: NotRequired[int | None]
    feature_type: NotRequired[str | None]
    influence: NotRequired[float | None]
    activation: NotRequired[float | None]
    isLogit: NotRequired[bool]


@with_config(_LOOSE)
class GraphLink(TypedDict):
    source: str
    target: str
    weight: float


@with_config(_LOOSE)
class GraphFile(TypedDict):
    metadata: NotRequired[GraphMetadata]
    nodes: list[GraphNode]
    links: list[GraphLink]
    nodes_exceeded: NotRequired[bool | None]


GRAPH_FILE = TypeAdapter(GraphFile)


def _arrow_struct(fields: dict[str, pa.DataType]) -> pa.StructType:
    return pa.struct(list(fields.items()))


def arrow_schema(layer: pa.DataType) -> pa.Schema:
    """The same fields for pyarrow's columnar JSON reader (`layer` read as int64 or string: one file
    uses one of the two). Arrow cannot tell a missing field from an explicit null; the reader's
    caller checks the required ones."""
    settings = _arrow_struct({"node_threshold": pa.float64(), "metric_value": pa.float64(),
                              "target_position": pa.int64(), "nodes_exceeded": pa.bool_()})
    metadata = _arrow_struct({"slug": pa.string(), "scan": pa.string(), "prompt": pa.string(),
                              "prompt_tokens": pa.list_(pa.string()), "node_threshold": pa.float64(),
                              "target_position": pa.int64(), "corpus_index": pa.int64(),
                              "generation_settings": settings})
    node = _arrow_struct({"node_id": pa.string(), "feature": pa.int64(), "layer": layer, "ctx_idx": pa.int64(),
                          "feature_type": pa.string(), "influence": pa.float64(), "activation": pa.float64(),
                          "isLogit": pa.bool_()})
    link = _arrow_struct({"source": pa.string(), "target": pa.string(), "weight": pa.float64()})
    return pa.schema([("metadata", metadata), ("nodes", pa.list_(node)), ("links", pa.list_(link)),
                      ("nodes_exceeded", pa.bool_())])
