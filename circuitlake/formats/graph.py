"""Wire format of a RelP attribution graph file (`graph_*.json[.gz]`, FORMATS.md section 1).

Unknown fields are ignored; `layer` may be an int (raw output) or a string (viewer output, where
embeddings are "E" and logits carry str(highest layer + 1)). Nodes are classified by
`feature_type` / `isLogit` / id prefix, never by layer.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class GenerationSettings(_Loose):
    node_threshold: float | None = None
    metric_value: float | None = None
    target_position: int | None = None
    nodes_exceeded: bool | None = None


class GraphMetadata(_Loose):
    slug: str | None = None
    scan: str | None = None
    prompt: str | None = None
    prompt_tokens: list[str] = Field(default_factory=list)
    node_threshold: float | None = None
    target_position: int | None = None
    corpus_index: int | None = None
    generation_settings: GenerationSettings = Field(default_factory=GenerationSettings)


class GraphNode(_Loose):
    node_id: str
    feature: int | None = None
    layer: int | str | None = None
    ctx_idx: int | None = None
    feature_type: str | None = None
    influence: float | None = None
    activation: float | None = None
    isLogit: bool = False


class GraphLink(_Loose):
    source: str
    target: str
    weight: float


class GraphFile(_Loose):
    metadata: GraphMetadata = Field(default_factory=GraphMetadata)
    nodes: list[GraphNode]
    links: list[GraphLink]
    nodes_exceeded: bool | None = None
