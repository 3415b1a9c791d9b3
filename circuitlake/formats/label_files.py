"""The label file formats: each is one module `circuitlake/formats/labels_<name>.py` (its name with `-`
spelled `_`) holding its wire model, whose `label_rows` turns a validated record into label rows, and a
`FORMAT` that says how its records are laid out and how a file of it is recognised. Adding a format is
adding such a module: `ingest labels` detection, `--format` and its help derive from the modules here.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel

if TYPE_CHECKING:
    from circuitlake.registry import AtlasRecord

PREFIX = "labels_"
# the spellings of a unit's key in use: L24/N5326, L24/5326, 24_5326, L0/F18753 (a transcoder feature), and a
# graph's node id 0_18753_1 ("{layer}_{index}_{pos}": the position is ignored)
NEURON_KEY = re.compile(r"^L?(\d+)(?:/[NF]?|_)(\d+)(?:_\d+)?$")
# how records are laid out in a file: JSONL lines; one object's values (at the top, or under a key);
# an array's items (under a key); a JSON array or JSONL, whichever the file holds
Records = Literal["lines", "object", "object:neurons", "array:profiles", "array-or-lines"]


class LabelError(ValueError):
    """A record that breaks a rule; the message is the reason (the record becomes a reject)."""


class LabelRecord(Protocol):
    def label_rows(self, key: str, atlas: AtlasRecord) -> list[dict]: ...


@dataclass(frozen=True)
class LabelFileFormat:
    """How one label file shape is read and recognised.

    `model` validates a record and converts it (`label_rows`); `records` is its layout; a file is of this
    format when the first key met at its top level (or, with `in_arrays`, of its first array item) is in
    `keys` or matches `key_pattern`; `repeats` is the pass a unit's further records in one file land as
    (several explanations of one feature), without it a unit's second record is a duplicate."""

    model: type[BaseModel]
    records: Records
    keys: frozenset[str] = frozenset()
    key_pattern: re.Pattern[str] | None = None
    in_arrays: bool = False
    repeats: str | None = None
    name: str = field(default="", compare=False)  # set from the module name

    def recognises(self, prefix: str, key: str) -> bool:
        if prefix not in (("", "item") if self.in_arrays else ("",)):
            return False
        return key in self.keys or bool(self.key_pattern and self.key_pattern.match(key))


def names() -> list[str]:
    """The formats' names, from the module names alone (nothing imported: cheap enough for `--help`)."""
    found = pkgutil.iter_modules([str(Path(__file__).parent)])
    return sorted(m.name.removeprefix(PREFIX).replace("_", "-") for m in found if m.name.startswith(PREFIX))


def formats() -> dict[str, LabelFileFormat]:
    """Every label file format by name (imports their modules)."""
    found = {}
    for name in names():
        module = importlib.import_module(f"circuitlake.formats.{PREFIX}{name.replace('-', '_')}")
        fmt: LabelFileFormat = module.FORMAT
        found[name] = LabelFileFormat(**{**fmt.__dict__, "name": name})
    return found


def label_row(layer: int, neuron: int, pass_: str, **values: object) -> dict:
    """One `labels` row of a unit and pass (the ingest adds source, file, record and batch)."""
    return {"layer": layer, "neuron": neuron, "pass": pass_, **values}


def unit_of(key: str | int, atlas: AtlasRecord) -> tuple[int, int]:
    """(layer, neuron) of a key in any spelling in use, checked against the atlas shape (LabelError otherwise)."""
    try:
        return atlas.neuron_of(key)
    except ValueError as e:
        raise LabelError(str(e)) from None
