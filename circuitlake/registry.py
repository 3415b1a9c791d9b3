"""The atlas registry (lake table `atlases`): each atlas's model shape, universe and thresholds, as data."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from circuitlake import lake
from circuitlake.errors import UserError
from circuitlake.formats.label_files import NEURON_KEY
from circuitlake.settings import Warehouse

ATLAS_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


# research pipeline: Infomap clusters RelP edges seen in >= 5 graphs; a weight edge has count 1
CLUSTER_MIN_COUNT = {"relp": 5, "weight_graph": 1}


class ClusterSettings(BaseModel):
    """How `circuitlake cluster` runs Infomap for an atlas (the research pipeline's settings by default).

    Infomap runs directed and multi-level over the `method` edges with count >= `min_count` (RelP: 5;
    weight edges have count 1), link weight = mean_abs_weight^2 (|effective_strength|^2 for weight
    edges), on neurons with more than one kept edge.
    """

    method: Literal["relp", "weight_graph"] = "relp"
    min_count: int = Field(default=CLUSTER_MIN_COUNT["relp"], ge=1)  # left out: CLUSTER_MIN_COUNT of the method
    seed: int = 42
    trials: int = Field(default=20, ge=1)
    threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)  # fixed per atlas: results depend on it

    @model_validator(mode="before")
    @classmethod
    def _min_count_of_method(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("min_count") is None:
            return {**data, "min_count": CLUSTER_MIN_COUNT.get(data.get("method") or "relp", 1)}
        return data


# Which label values fill which neurons column, best first: "pass.field" (optionally "pass.field@source").
# The defaults reproduce the research atlases: enriched (label = short_label else label), function-db
# (label = function_label, else the positive activation description), autointerp JSONL (labels[0].label).
# the research atlases' rules, each format landing its own passes: enriched (OLMo) short_label, else label;
# function database (Llama) function_label (output.label), else the positive activation description;
# autointerp JSONL (Qwen) its label
DEFAULT_LABEL_PRECEDENCE: dict[str, list[str]] = {
    # clerp: the display label graphs carry (Neuronpedia), used only where nothing else labels the unit
    "label": ["output.short_label", "output.label", "autointerp.label", "activation_pos.label", "clerp.label"],
    "output_label": ["output.label"],
    "input_label": ["input.label"],
    "description": ["output.description", "autointerp.description"],
}
# autointerp_original: the earlier autointerp label an enriched file carries (FORMATS.md 2b); the research
# OLMo atlas did not use it ("label = short_label, else label"), so the default precedence leaves it out
# autointerp_alternative: a unit's further explanations in one file (Neuronpedia exports hold several per
# feature; the first in file order is its `autointerp`); clerp: graph nodes' display labels (not a labels row)
LABEL_PASSES = (
    "output",
    "input",
    "autointerp",
    "autointerp_original",
    "autointerp_alternative",
    "activation_pos",
    "activation_neg",
    "clerp",
)
UNITS = {"neuron": "MLP neurons", "transcoder": "transcoder features"}
LABEL_FIELDS = ("label", "short_label", "description")


class AtlasSettings(BaseModel):
    """Settings stored as JSON in `atlases.settings` (label precedence also as rows of `label_precedence`)."""

    label_precedence: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_LABEL_PRECEDENCE))
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)

    @field_validator("label_precedence")
    @classmethod
    def _known_rules(cls, precedence: dict[str, list[str]]) -> dict[str, list[str]]:
        precedence_rows("-", precedence)  # raises on an unknown column, pass or field
        return {**DEFAULT_LABEL_PRECEDENCE, **precedence}  # columns not given keep the defaults


def precedence_rows(atlas: str, precedence: dict[str, list[str]]) -> list[dict]:
    """Rows of lake table `label_precedence`; raises ValueError on an unknown column, pass or field."""
    rows = []
    for column, rules in precedence.items():
        if column not in DEFAULT_LABEL_PRECEDENCE:
            raise ValueError(f"label precedence: unknown column {column!r} (one of {', '.join(DEFAULT_LABEL_PRECEDENCE)})")
        for rank, rule in enumerate(rules, 1):
            spec, _, source = rule.partition("@")
            pass_, _, field = spec.partition(".")
            if pass_ not in LABEL_PASSES or field not in LABEL_FIELDS:
                raise ValueError(
                    f"label precedence: {rule!r} is not pass.field[@source] with pass in {LABEL_PASSES} and field in {LABEL_FIELDS}"
                )
            rows.append({"atlas": atlas, "column_name": column, "rank": rank, "pass": pass_, "field": field, "source": source or None})
    return rows


class AtlasRecord(BaseModel):
    """An atlas as registered (one row of lake table `atlases`): every default and rule of a registration
    lives here, so the CLI and the Python API register alike (`record` turns a bad field into a UserError)."""

    name: str = Field(alias="atlas", pattern=ATLAS_NAME.pattern)  # the `atlas` column of every lake table
    model_id: str
    num_layers: int = Field(gt=0)
    neurons_per_layer: int = Field(gt=0)  # units per layer: MLP neurons (d_ffn), or transcoder features
    universe: Literal["grid", "observed"] = "grid"  # grid: every unit of the model; observed: units seen in graphs or wiring
    unit: Literal["neuron", "transcoder"] = "neuron"  # what graph nodes count as units (graph_rows.UNITS)
    min_label_coverage: float | None = Field(default=None, ge=0, le=1)  # e.g. 0.978 (an audit checks it)
    relp_min_count: int = Field(default=3, ge=1)  # research pipeline: published edges have count >= 3
    settings: AtlasSettings = Field(default_factory=AtlasSettings)

    model_config = {"populate_by_name": True}

    def contains(self, layer: int, neuron: int) -> bool:
        return 0 <= layer < self.num_layers and 0 <= neuron < self.neurons_per_layer

    def neuron_of(self, key: str | int) -> tuple[int, int]:
        """(layer, neuron) of a key in any spelling in use (L24/N5326, L24/5326, 24_5326, L0/F18753, a graph
        node id 0_18753_1 whose position is ignored, or a feature_id), checked against the atlas shape;
        ValueError otherwise."""
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            layer, neuron = divmod(int(key), self.neurons_per_layer)
        elif m := NEURON_KEY.match(str(key).strip()):
            layer, neuron = int(m[1]), int(m[2])
        else:
            raise ValueError(
                f"key {key!r} is not L<layer>/N<neuron>, L<layer>/F<feature>, <layer>_<index>[_<pos>] (a graph node id) or a feature_id"
            )
        if not self.contains(layer, neuron):
            what = "neuron" if self.unit == "neuron" else "feature"
            raise ValueError(f"{what} L{layer}/N{neuron} is outside the atlas shape {self.num_layers} x {self.neurons_per_layer}")
        return layer, neuron


def record(**fields: object) -> AtlasRecord:
    """An AtlasRecord of `fields` (fields left out or None take their defaults); UserError naming the
    first bad field."""
    given = {k: v for k, v in fields.items() if v is not None}
    try:
        return AtlasRecord.model_validate(given)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "atlas"
        more = f" (+{e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise UserError(f"atlas {given.get('atlas', given.get('name', ''))}: {where}: {first['msg']}{more}") from None


def add(wh: Warehouse, atlas: AtlasRecord) -> None:
    """Register or update an atlas (atomic replace of its row). A unit kind cannot change once graphs landed.
    Registering an atlas again as it is commits nothing (a build then has nothing new to do)."""
    row = atlas.model_dump(exclude={"settings"}, by_alias=True)
    row["settings"] = atlas.settings.model_dump_json()
    rules = precedence_rows(atlas.name, atlas.settings.label_precedence)
    lake.ensure(wh)
    where = [("atlas", "=", atlas.name)]
    stored = [{k: v for k, v in r.items() if k != "registered_at"} for r in lake.read(wh, "atlases", filters=where).to_pylist()]
    if stored == [row] and _sorted(lake.read(wh, "label_precedence", filters=where).to_pylist()) == _sorted(rules):
        return
    row["registered_at"] = datetime.now(UTC)
    before = [r["unit"] for r in stored]
    if before and before[0] != atlas.unit and lake.committed_batches(wh, atlas.name, "graphs"):
        raise UserError(
            f"atlas {atlas.name} holds graphs of {UNITS[before[0] or 'neuron']}: its unit cannot change "
            f"(retract its graphs first, or add a new atlas with --unit {atlas.unit})"
        )
    lake.replace(wh, "label_precedence", pa.Table.from_pylist(rules, lake.TABLES["label_precedence"].schema), f"atlas = '{atlas.name}'")
    lake.replace(wh, "atlases", pa.Table.from_pylist([row]), f"atlas = '{atlas.name}'")


def _sorted(rows: list[dict]) -> list[tuple]:
    return sorted(tuple(sorted(r.items())) for r in rows)


def get(wh: Warehouse, name: str) -> AtlasRecord:
    rows = lake.read(wh, "atlases", filters=[("atlas", "=", name)]).to_pylist()
    if not rows:
        raise UserError(
            f"atlas {name!r} is not registered: run `circuitlake atlas add {name} --model ... --layers N --neurons-per-layer M` first"
        )
    row = rows[0]
    row["settings"] = AtlasSettings.model_validate_json(row["settings"] or "{}")
    return AtlasRecord.model_validate(row)


def atlas_names(wh: Warehouse) -> list[str]:
    """The registered atlases' names, sorted, without reading their records (which a lake half-way
    through a migration may not yet hold in the current shape)."""
    return sorted(lake.read(wh, "atlases", ["atlas"])["atlas"].to_pylist())


def all_atlases(wh: Warehouse) -> list[AtlasRecord]:
    return [get(wh, n) for n in atlas_names(wh)]


def resolve(wh: Warehouse, name: str | None) -> AtlasRecord:
    """The atlas `name`; when None, the warehouse's only atlas (UserError when it holds none or several)."""
    if name:
        return get(wh, name)
    names = atlas_names(wh)
    if len(names) != 1:
        listed = ", ".join(names) or "none registered"
        raise UserError(f"the warehouse holds {len(names)} atlases ({listed}): pass --atlas NAME")
    return get(wh, names[0])
