"""Wire format of a RelP attribution graph file (`graph_*.json[.gz]`, FORMATS.md section 1).

TypedDicts validated by pydantic-core straight from JSON bytes (about 6x faster than model
instances for thousands of links). Unknown fields are ignored; `layer` may be an int (raw output)
or a string (viewer output, where embeddings are "E" and logits carry str(highest layer + 1)).
Nodes are classified by `feature_type` / `isLogit` / id prefix, never by layer. circuit-tracer and
Neuronpedia write error nodes with `feature: -1`, transcoder features with an encoded `feature` (the
per-layer index is in `node_id`), and a display label in `clerp`. The ingest's fast path
(ingest/graph_rows.py) decodes the same fields with msgspec (`FAST_GRAPH_FILE`: only the types this model
takes without converting) and leaves to this model every file it cannot take exactly.
"""

from __future__ import annotations

from typing import Annotated, NotRequired

import msgspec
from pydantic import ConfigDict, Field, TypeAdapter, with_config
from typing_extensions import TypedDict

_LOOSE = ConfigDict(extra="ignore")
# ranges the format implies: positions, indices and ids count from 0 (and fit the lake's int32 positions,
# int64 ids); a threshold is a non-negative score
Threshold = Annotated[float, Field(ge=0)]
Position = Annotated[int, Field(ge=0, le=2**31 - 1)]
Index = Annotated[int, Field(ge=0, le=2**63 - 1)]
FeatureId = Annotated[int, Field(ge=-1, le=2**63 - 1)]  # -1: circuit-tracer's error nodes


@with_config(_LOOSE)
class GenerationSettings(TypedDict, total=False):
    node_threshold: Threshold | None
    metric_value: float | None
    target_position: Position | None
    nodes_exceeded: bool | None


@with_config(_LOOSE)
class GraphMetadata(TypedDict, total=False):
    slug: str | None
    scan: str | None
    prompt: str | None
    prompt_tokens: list[str]
    node_threshold: Threshold | None
    target_position: Position | None
    corpus_index: Index | None
    generation_settings: GenerationSettings
    transcoder_list: list[str] | None  # circuit-tracer: the transcoders of a custom scan (often empty)
    info: dict | None  # Neuronpedia: generator {name, version}, source_set / transcoder_set, ...


@with_config(_LOOSE)
class GraphNode(TypedDict):
    node_id: str
    feature: NotRequired[FeatureId | None]
    layer: NotRequired[int | str | None]
    ctx_idx: NotRequired[Position | None]
    feature_type: NotRequired[str | None]
    influence: NotRequired[float | None]
    activation: NotRequired[float | None]
    isLogit: NotRequired[bool]
    clerp: NotRequired[str | None]  # the label a viewer shows (Neuronpedia: the feature's explanation)


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


class FastGraphNode(msgspec.Struct, gc=False):
    """A node as the fast path takes it: the GraphNode fields, each only in the JSON types that model
    takes as they are (no bool for an int, no null for isLogit); unknown fields ignored. Untracked by
    the cyclic GC (`gc=False`: scalars only, never in a cycle): a graph's thousands of them no longer
    trigger collections that walk them (parsing 5% quicker)."""

    node_id: str
    feature: int | None = None
    layer: int | str | None = None
    ctx_idx: int | None = None
    feature_type: str | None = None
    influence: float | None = None
    activation: float | None = None
    isLogit: bool = False
    clerp: str | None = None


class FastGraphLink(msgspec.Struct, gc=False):
    source: str
    target: str
    weight: float


class FastGraphFile(msgspec.Struct):
    """The file as the fast path takes it; `metadata` left as JSON for GraphMetadata to judge."""

    nodes: list[FastGraphNode]
    links: list[FastGraphLink]
    metadata: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    nodes_exceeded: bool | None = None


FAST_GRAPH_FILE = msgspec.json.Decoder(FastGraphFile)
