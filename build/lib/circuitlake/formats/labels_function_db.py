"""Wire format of the function database (Llama-3.1-8B, FORMATS.md 2c): `{"neurons": {"L17/N12426": {...}}}`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


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
