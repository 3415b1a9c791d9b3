"""The atlas registry (lake table `atlases`): each atlas's model shape, universe and thresholds, as data."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, Field

from circuitlake import lake
from circuitlake.errors import UserError
from circuitlake.settings import Warehouse

ATLAS_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class ClusterSettings(BaseModel):
    """How `circuitlake cluster` runs Infomap for an atlas (the research pipeline's settings by default)."""

    min_count: int = 5  # RelP edges with count >= this are clustered
    seed: int = 42
    trials: int = 20
    threads: int = 1


class AtlasSettings(BaseModel):
    """Settings stored as JSON in `atlases.settings`."""

    cluster: ClusterSettings = Field(default_factory=ClusterSettings)


class Atlas(BaseModel):
    atlas: str
    model_id: str
    num_layers: int
    neurons_per_layer: int
    universe: Literal["grid", "observed"] = "grid"
    min_label_coverage: float | None = None
    relp_min_count: int = 3  # research pipeline: published edges have count >= 3
    settings: AtlasSettings = Field(default_factory=AtlasSettings)

    def contains(self, layer: int, neuron: int) -> bool:
        return 0 <= layer < self.num_layers and 0 <= neuron < self.neurons_per_layer


def add(wh: Warehouse, atlas: Atlas) -> None:
    """Register or update an atlas (atomic replace of its row)."""
    if not ATLAS_NAME.match(atlas.atlas):
        raise UserError(f"atlas name {atlas.atlas!r} must be lowercase letters, digits, '.', '_' or '-'")
    if atlas.num_layers <= 0 or atlas.neurons_per_layer <= 0:
        raise UserError("--layers and --neurons-per-layer must be positive")
    if atlas.min_label_coverage is not None and not 0 <= atlas.min_label_coverage <= 1:
        raise UserError("--min-label-coverage is a fraction between 0 and 1 (e.g. 0.978)")
    row = atlas.model_dump(exclude={"settings"})
    row["settings"] = atlas.settings.model_dump_json()
    row["registered_at"] = datetime.now(timezone.utc)
    lake.ensure(wh)
    lake.replace(wh, "atlases", pa.Table.from_pylist([row]), f"atlas = '{atlas.atlas}'")


def get(wh: Warehouse, name: str) -> Atlas:
    rows = lake.read(wh, "atlases", filters=[("atlas", "=", name)]).to_pylist()
    if not rows:
        raise UserError(f"atlas {name!r} is not registered: run `circuitlake atlas add {name} --model ... --layers N --neurons-per-layer M` first")
    row = rows[0]
    row["settings"] = AtlasSettings.model_validate_json(row["settings"] or "{}")
    return Atlas.model_validate(row)


def all_atlases(wh: Warehouse) -> list[Atlas]:
    names = lake.read(wh, "atlases", ["atlas"])["atlas"].to_pylist()
    return [get(wh, n) for n in sorted(names)]
