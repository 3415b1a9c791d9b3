"""Wire format of JSONL autointerp labels (Qwen3-32B `labels.jsonl`, FORMATS.md 2a): one neuron per line.

`feature_id = layer * neurons_per_layer + neuron`; a line may lack `labels` (a labeling error).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from circuitlake.formats.label_files import LabelError, LabelFileFormat, label_row, unit_of

if TYPE_CHECKING:
    from circuitlake.registry import AtlasRecord


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

    def label_rows(self, _key: str, atlas: AtlasRecord) -> list[dict]:
        """Its `labels` rows."""
        meta = self.feature_metadata
        if self.feature_id is None and (meta.layer is None or meta.neuron is None):
            raise LabelError("no feature_id and no feature_metadata.layer/neuron")
        if self.feature_id is not None:
            layer, neuron = unit_of(self.feature_id, atlas)
            if meta.layer is not None and meta.neuron is not None and (meta.layer, meta.neuron) != (layer, neuron):
                raise LabelError(
                    f"feature_id {self.feature_id} is L{layer}/N{neuron} but feature_metadata says L{meta.layer}/N{meta.neuron}"
                )
        else:
            layer, neuron = unit_of(f"{meta.layer}_{meta.neuron}", atlas)
        first = self.labels[0] if self.labels else None  # a line without labels: a labeling error upstream, kept unlabeled
        return [
            label_row(
                layer,
                neuron,
                "autointerp",
                label=first.label if first else None,
                description=first.metadata.parsed_response.description if first else None,
                max_activation=meta.max_activation,
                num_exemplars=meta.num_exemplars,
            )
        ]


FORMAT = LabelFileFormat(AutointerpLine, "lines", keys=frozenset({"feature_id", "labels", "feature_metadata"}))
