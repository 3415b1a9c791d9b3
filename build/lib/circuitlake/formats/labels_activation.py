"""Wire format of per-neuron edge-stats profiles carrying activation descriptions (FORMATS.md appendix):
`{"metadata": ..., "summary": ..., "profiles": [{"layer", "neuron", "transluce_label_positive", ...}]}`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class OutputProjection(BaseModel):
    model_config = ConfigDict(extra="ignore")

    output_norm: float | None = None


class NeuronProfile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    layer: int | None = None
    neuron: int | None = None
    neuron_id: str | None = None
    appearance_count: int | None = None
    transluce_label_positive: str | None = None
    transluce_label_negative: str | None = None
    output_projection: OutputProjection = Field(default_factory=OutputProjection)
