"""The atlas registry (circuitlake/registry.py): every default and rule of a registration lives in the record."""

from __future__ import annotations

import subprocess
import sys

import pytest

from circuitlake import lake, registry
from circuitlake.errors import UserError
from circuitlake.settings import warehouse


def test_defaults_follow_the_research_pipeline():
    r = registry.record(atlas="q", model_id="m", num_layers=4, neurons_per_layer=16)
    assert (r.name, r.universe, r.unit, r.relp_min_count, r.min_label_coverage) == ("q", "grid", "neuron", 3, None)
    assert (r.settings.cluster.method, r.settings.cluster.min_count, r.settings.cluster.trials, r.settings.cluster.seed) == (
        "relp",
        5,
        20,
        42,
    )
    assert r.settings.label_precedence == registry.DEFAULT_LABEL_PRECEDENCE


def test_cluster_threshold_follows_the_method_unless_given():
    weight = registry.record(atlas="w", model_id="m", num_layers=4, neurons_per_layer=16, settings={"cluster": {"method": "weight_graph"}})
    assert weight.settings.cluster.min_count == 1
    given = registry.ClusterSettings(method="weight_graph", min_count=7)
    assert given.min_count == 7
    assert registry.ClusterSettings().min_count == registry.CLUSTER_MIN_COUNT["relp"]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"atlas": "Bad Name"}, "atlas"),
        ({"num_layers": 0}, "num_layers"),
        ({"min_label_coverage": 1.5}, "min_label_coverage"),
        ({"unit": "attention"}, "unit"),
        ({"universe": "all"}, "universe"),
        ({"settings": {"cluster": {"method": "louvain"}}}, "settings.cluster.method"),
        ({"settings": {"label_precedence": {"label": ["output.nonsense"]}}}, "settings.label_precedence"),
    ],
)
def test_a_bad_field_is_one_user_error_naming_it(fields, named):
    with pytest.raises(UserError, match=named.replace(".", r"\.")):
        registry.record(**{"atlas": "a", "model_id": "m", "num_layers": 4, "neurons_per_layer": 16, **fields})


def test_given_precedence_columns_replace_only_themselves():
    r = registry.record(
        atlas="a", model_id="m", num_layers=1, neurons_per_layer=1, settings={"label_precedence": {"label": ["input.label"]}}
    )
    assert r.settings.label_precedence["label"] == ["input.label"]
    assert r.settings.label_precedence["description"] == registry.DEFAULT_LABEL_PRECEDENCE["description"]


def test_keys_in_every_spelling():
    r = registry.record(atlas="a", model_id="m", num_layers=30, neurons_per_layer=10000)
    for key in ("L24/N5326", "L24/5326", "24_5326", "L24/F5326", "24_5326_7", "245326", 245326):
        assert r.neuron_of(key) == (24, 5326), key
    with pytest.raises(ValueError, match="outside the atlas shape"):
        r.neuron_of("L30/N1")


def test_add_get_resolve_and_a_unit_fixed_once_graphs_landed(tmp_path):
    wh = warehouse(tmp_path / "w")
    registry.add(wh, registry.record(atlas="one", model_id="m", num_layers=2, neurons_per_layer=8))
    assert registry.resolve(wh, None).name == "one"  # the only atlas
    registry.add(wh, registry.record(atlas="two", model_id="m", num_layers=2, neurons_per_layer=8, unit="transcoder"))
    with pytest.raises(UserError, match="pass --atlas"):
        registry.resolve(wh, None)
    with pytest.raises(UserError, match="not registered"):
        registry.get(wh, "three")
    assert [a.name for a in registry.all_atlases(wh)] == ["one", "two"]
    assert registry.get(wh, "two").unit == "transcoder"
    lake.Batch(wh, "one", "graphs", hashes=["g"]).commit([], set())  # a graphs batch landed
    with pytest.raises(UserError, match="unit cannot change"):
        registry.add(wh, registry.record(atlas="one", model_id="m", num_layers=2, neurons_per_layer=8, unit="transcoder"))


def test_registry_reads_after_circuitlake_search_was_imported_first(tmp_path):
    """usearch's native library, loaded before deltalake's, made deltalake's next filtered read segfault:
    circuitlake.search must not load it at import (a fresh process, importing it first, as the search bench
    and a notebook may)."""
    script = f"""
import circuitlake.search
from circuitlake import lake, registry
from circuitlake.settings import warehouse
wh = warehouse({str(tmp_path / "wh")!r})
lake.ensure(wh)
registry.add(wh, registry.AtlasRecord(atlas="a", model_id="m", num_layers=2, neurons_per_layer=4))
print(registry.get(wh, "a").name, flush=True)
import os; os._exit(0)  # as the CLI ends: deltalake's threads can abort an ordinary interpreter exit
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "a", (done.returncode, done.stderr[-1000:])
