"""Wire format of enriched two-pass labels (OLMo-3-7B, FORMATS.md 2b): one JSON object keyed "L{layer}/N{neuron}".

Pass 1 (output: what the neuron does) and pass 2 (input: what triggers it) in one entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from circuitlake.formats.label_files import NEURON_KEY, LabelFileFormat, label_row, unit_of

if TYPE_CHECKING:
    from circuitlake.registry import AtlasRecord


class EnrichedLabel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    label: str | None = None
    short_label: str | None = None
    output_function: str | None = None
    type: str | None = None  # lexical | semantic | routing | formatting
    interpretability: str | None = None  # low | medium | high
    confidence: str | None = None
    input_label: str | None = None
    input_function: str | None = None
    input_type: str | None = None  # combination | token-pattern | upstream-gated | context | position
    input_interpretability: str | None = None
    input_confidence: str | None = None
    autointerp_label: str | None = None

    def label_rows(self, key: str, atlas: AtlasRecord) -> list[dict]:
        """Its `labels` rows."""
        layer, neuron = unit_of(key, atlas)
        rows = [
            label_row(
                layer,
                neuron,
                "output",
                label=self.label,
                short_label=self.short_label,
                description=self.output_function,
                type=self.type,
                interpretability=self.interpretability,
                confidence=self.confidence,
            ),
            label_row(
                layer,
                neuron,
                "input",
                label=self.input_label,
                description=self.input_function,
                type=self.input_type,
                interpretability=self.input_interpretability,
                confidence=self.input_confidence,
            ),
        ]
        if self.autointerp_label is not None:  # kept, but not an atlas label by default (registry.LABEL_PASSES)
            rows.append(label_row(layer, neuron, "autointerp_original", label=self.autointerp_label))
        return rows


FORMAT = LabelFileFormat(EnrichedLabel, "object", key_pattern=NEURON_KEY)  # keys "L17/N12426"
