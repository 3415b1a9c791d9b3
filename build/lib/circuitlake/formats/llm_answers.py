"""Wire format of the labeling job's LLM answers: one JSON object per neuron and pass (FORMATS.md 5).

The job asks for exactly these objects (`response_format` json_schema, or JSON mode where an endpoint
refuses schemas) and stores a label only when the answer validates; anything else is a failed call.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Interpretability = Literal["low", "medium", "high"]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    short_label: str = Field(description="3-8 words naming what the neuron does")
    function: str = Field(description="one sentence")
    interpretability: Interpretability

    @field_validator("short_label")
    @classmethod
    def _three_to_eight_words(cls, v: str) -> str:
        if not 3 <= len(v.split()) <= 8:
            raise ValueError("short_label must be 3-8 words")
        return v.strip()


class OutputAnswer(_Answer):
    """Pass 1, output: what the neuron does when it fires."""

    type: Literal["lexical", "semantic", "routing", "formatting"]


class InputAnswer(_Answer):
    """Pass 2, input: what makes the neuron fire."""

    input_type: Literal["combination", "token-pattern", "upstream-gated", "context", "position"]


ANSWERS: dict[str, type[_Answer]] = {"output": OutputAnswer, "input": InputAnswer}
