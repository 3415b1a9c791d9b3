"""Wire format of Neuronpedia's explanation exports: the API's `explanation/export` JSON array and the
bulk export's `.jsonl` / `.jsonl.gz`, one explanation per record.

`layer` is the source id ("20-gemmascope-mlp-16k", "1-clt-hp", "6-res-jb"): the unit's layer is its
leading integer. `index` is the feature's index in that layer, written as a string or an int. One
feature can have several explanations (other explainer models or types).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, field_validator

from circuitlake.formats.label_files import LabelFileFormat, label_row, unit_of

if TYPE_CHECKING:
    from circuitlake.registry import AtlasRecord

SOURCE_LAYER = re.compile(r"^(\d+)(?:-|$)")
SNIFF_KEYS = frozenset({"modelId", "explanationModelName", "typeName"})  # keys only this format has at its top level


class NeuronpediaExplanation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    modelId: str | None = None
    layer: str  # the source id; its leading integer is the layer
    index: int  # "4691" or 4691
    description: str | None = None
    typeName: str | None = None  # e.g. oai_token-act-pair, np_acts-logits-general
    explanationModelName: str | None = None  # the explainer model
    id: str | None = None

    @field_validator("layer")
    @classmethod
    def _source_has_layer(cls, value: str) -> str:
        if not SOURCE_LAYER.match(value):
            raise ValueError(f"source id {value!r} does not start with a layer number (e.g. 20-gemmascope-mlp-16k)")
        return value

    @property
    def layer_number(self) -> int:
        match = SOURCE_LAYER.match(self.layer)
        assert match  # checked by the validator
        return int(match[1])

    def label_rows(self, _key: str, atlas: AtlasRecord) -> list[dict]:
        """Its `labels` rows."""
        layer, neuron = unit_of(f"{self.layer_number}_{self.index}", atlas)
        return [
            label_row(
                layer,
                neuron,
                "autointerp",
                label=self.description,
                type=self.typeName,  # provenance: how the explanation was made
                labeler_model=self.explanationModelName,
            )
        ]


# the first explanation of a feature in file order is its autointerp label; the others stay as provenance
FORMAT = LabelFileFormat(NeuronpediaExplanation, "array-or-lines", keys=SNIFF_KEYS, in_arrays=True, repeats="autointerp_alternative")
