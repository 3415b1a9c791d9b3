"""Wire format of per-neuron edge-stats profiles carrying activation descriptions (FORMATS.md appendix):
`{"metadata": ..., "summary": ..., "profiles": [{"layer", "neuron", "transluce_label_positive", ...}]}`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from circuitlake.formats.label_files import LabelError, LabelFileFormat, label_row, unit_of

if TYPE_CHECKING:
    from circuitlake.registry import AtlasRecord


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

    def label_rows(self, key: str, atlas: AtlasRecord) -> list[dict]:
        """Its `labels` rows."""
        if self.layer is not None and self.neuron is not None:
            layer, neuron = unit_of(f"{self.layer}_{self.neuron}", atlas)
            if self.neuron_id is not None and unit_of(self.neuron_id, atlas) != (layer, neuron):
                raise LabelError(f"neuron_id {self.neuron_id} disagrees with layer {self.layer} / neuron {self.neuron}")
        elif self.neuron_id is not None:
            layer, neuron = unit_of(self.neuron_id, atlas)
        else:
            raise LabelError("profile without layer/neuron or neuron_id")
        norm = self.output_projection.output_norm
        return [
            label_row(layer, neuron, "activation_pos", label=self.transluce_label_positive, output_norm=norm),
            label_row(layer, neuron, "activation_neg", label=self.transluce_label_negative),
        ]


FORMAT = LabelFileFormat(NeuronProfile, "array:profiles", keys=frozenset({"profiles"}))
