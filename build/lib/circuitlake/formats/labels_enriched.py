"""Wire format of enriched two-pass labels (OLMo-3-7B, FORMATS.md 2b): one JSON object keyed "L{layer}/N{neuron}".

Pass 1 (output: what the neuron does) and pass 2 (input: what triggers it) in one entry.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


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
