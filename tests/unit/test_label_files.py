"""Label file formats (circuitlake/formats/label_files.py): one module each; names, detection and help derive from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from circuitlake.formats import label_files
from circuitlake.formats.label_files import NEURON_KEY

FORMATS = Path(label_files.__file__).parent


def test_every_format_module_registers_one_format_under_its_name():
    modules = sorted(p.stem for p in FORMATS.glob("labels_*.py"))
    assert label_files.names() == sorted(m.removeprefix("labels_").replace("_", "-") for m in modules)
    known = label_files.formats()
    assert list(known) == label_files.names()
    for name, fmt in known.items():
        assert fmt.name == name
        assert callable(getattr(fmt.model, "label_rows", None)), f"{name}: its model converts records (label_rows)"


@pytest.mark.parametrize(
    ("prefix", "key", "expected"),
    [
        ("", "feature_id", "autointerp-jsonl"),
        ("", "L17/N12426", "enriched"),
        ("", "neurons", "function-db"),
        ("", "profiles", "activation-descriptions"),
        ("item", "modelId", "neuronpedia"),
        ("", "explanationModelName", "neuronpedia"),
    ],
)
def test_each_format_recognises_its_own_keys_and_no_other_does(prefix, key, expected):
    hits = [f.name for f in label_files.formats().values() if f.recognises(prefix, key)]
    assert hits == [expected]


def test_only_array_formats_look_inside_arrays():
    assert not any(f.recognises("item", "feature_id") for f in label_files.formats().values())


@pytest.mark.parametrize("key", ["L24/N5326", "L24/5326", "24_5326", "L0/F18753", "0_18753_1"])
def test_unit_key_spellings(key):
    assert NEURON_KEY.match(key)


@pytest.mark.parametrize("key", ["L24", "N5326", "24-5326", "E_9_0", "L24/N5326x"])
def test_not_unit_keys(key):
    assert not NEURON_KEY.match(key)
