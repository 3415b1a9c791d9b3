"""Wire format of a wiring-cache layer file (`layer_{i}.json`, FORMATS.md section 3), keyed by neuron index.

Only `layer`, `neuron` and `effective_strength` are certain on a connection; the rest may be absent.
Projections are `promotes`/`suppresses` here (`promoted`/`suppressed` in the edge-stats profiles): both accepted.
"""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, TypeAdapter


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Connection(_Loose):
    layer: int
    neuron: int
    effective_strength: float
    c_up: float | None = None
    c_gate: float | None = None
    predicted_polarity: str | None = None


class Lists(_Loose):
    excitatory: list[Connection] = Field(default_factory=list)
    inhibitory: list[Connection] = Field(default_factory=list)


class Token(_Loose):
    token: str | None = None
    token_id: int | None = None
    weight: float


class Projections(_Loose):
    promotes: list[Token] = Field(default_factory=list, validation_alias=AliasChoices("promotes", "promoted"))
    suppresses: list[Token] = Field(default_factory=list, validation_alias=AliasChoices("suppresses", "suppressed"))


class NeuronWiring(_Loose):
    upstream: Lists = Field(default_factory=Lists)
    downstream: Lists = Field(default_factory=Lists)
    projections: Projections = Field(default_factory=Projections)


CACHE_LAYER_FILE = TypeAdapter(dict[str, NeuronWiring])  # a whole layer file: neuron index (as text) -> its wiring
