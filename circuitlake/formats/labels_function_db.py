"""Wire format of the function database (Llama-3.1-8B, FORMATS.md 2c): `{"neurons": {"L17/N12426": {...}}}`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from circuitlake.formats.label_files import LabelError, LabelFileFormat, label_row, unit_of

if TYPE_CHECKING:
    from circuitlake.registry import AtlasRecord


class FunctionDbNeuron(BaseModel):
    model_config = ConfigDict(extra="ignore")

    neuron_id: str | None = None
    layer: int | None = None
    neuron_idx: int | None = None
    function_label: str | None = None
    function_description: str | None = None
    function_type: str | None = None
    interpretability: str | None = None
    confidence: str | None = None
    input_label: str | None = None
    input_description: str | None = None
    input_type: str | None = None
    input_interpretability: str | None = None
    input_confidence: str | None = None
    output_norm: float | None = None
    appearance_count: int | None = None

    def label_rows(self, key: str, atlas: AtlasRecord) -> list[dict]:
        """Its `labels` rows."""
        layer, neuron = unit_of(key, atlas)
        if self.layer is not None and self.neuron_idx is not None and (self.layer, self.neuron_idx) != (layer, neuron):
            raise LabelError(f"key {key} disagrees with layer {self.layer} / neuron_idx {self.neuron_idx}")
        return [
            label_row(
                layer,
                neuron,
                "output",
                label=self.function_label,
                description=self.function_description,
                type=self.function_type,
                interpretability=self.interpretability,
                confidence=self.confidence,
                output_norm=self.output_norm,
            ),
            label_row(
                layer,
                neuron,
                "input",
                label=self.input_label,
                description=self.input_description,
                type=self.input_type,
                interpretability=self.input_interpretability,
                confidence=self.input_confidence,
            ),
        ]


FORMAT = LabelFileFormat(FunctionDbNeuron, "object:neurons", keys=frozenset({"neurons"}))
