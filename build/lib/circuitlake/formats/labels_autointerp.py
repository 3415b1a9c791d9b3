"""Wire format of JSONL autointerp labels (Qwen3-32B `labels.jsonl`, FORMATS.md 2a): one neuron per line.

`feature_id = layer * neurons_per_layer + neuron`; a line may lack `labels` (a labeling error).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ParsedResponse(_Loose):
    label: str | None = None
    description: str | None = None


class LabelMetadata(_Loose):
    parsed_response: ParsedResponse = Field(default_factory=ParsedResponse)


class AutointerpLabel(_Loose):
    label: str | None = None
    metadata: LabelMetadata = Field(default_factory=LabelMetadata)


class FeatureMetadata(_Loose):
    layer: int | None = None
    neuron: int | None = None
    num_exemplars: int | None = None
    max_activation: float | None = None


class AutointerpLine(_Loose):
    feature_id: int | None = None
    labels: list[AutointerpLabel] = Field(default_factory=list)
    feature_metadata: FeatureMetadata = Field(default_factory=FeatureMetadata)
