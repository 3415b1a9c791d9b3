"""Schema migration: a lake written by schema version 1 (tests/fixtures/lake_v1, made by the circuitlake of
that version) is refused by every command until `circuitlake migrate`, which keeps every row."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
from conftest import cli

from circuitlake import lake
from circuitlake.settings import warehouse

FIXTURE = Path(__file__).parent / "fixtures" / "lake_v1"


def test_v1_lake_is_refused_until_migrated_and_keeps_every_row(tmp_path):
    wh = warehouse(tmp_path / "wh")
    shutil.copytree(FIXTURE, wh.lake)
    assert lake.lake_version(wh) == "1"
    # an enriched label batch as version 1 landed it: the original autointerp label as pass `autointerp`
    old = lake.read(wh, "labels").to_pylist()[0]
    enriched = [{**old, "batch": "labels-enriched", "source": "enriched", "pass": p, "label": p} for p in ("output", "autointerp")]
    lake.append(wh, "labels", pa.Table.from_pylist(enriched))
    rows = {name: lake.read(wh, name) for name in lake.TABLES if lake.schema_version(wh, name)}
    assert rows["graphs"].num_rows == 2 and rows["labels"].num_rows == 3 and rows["rejects"].num_rows == 2

    for command in (
        ["status"],
        ["build"],
        ["ingest", "graphs", str(tmp_path), "--atlas", "t"],
        ["atlas", "list"],
        ["retract", "--atlas", "t", "--all", "--yes"],
        ["maintain"],
    ):
        refused = cli(*command, wh=wh.root)
        assert refused.returncode == 2 and "circuitlake migrate" in refused.stderr, command
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert lake.lake_version(wh) == "1" and not lake.schema_version(wh, "retractions")  # nothing created

    done = cli("migrate", wh=wh.root)
    assert (
        done.returncode == 0
        and "1 -> 2" in done.stderr
        and "2 -> 3" in done.stderr
        and "3 -> 4" in done.stderr
        and "4 -> 5" in done.stderr
        and "5 -> 6" in done.stderr
    )
    assert lake.lake_version(wh) == lake.SCHEMA_VERSION == "6"
    assert lake.read(wh, "atlases")["unit"].to_pylist() == ["neuron"]  # every earlier atlas holds MLP neurons
    added = {"atlases": ["unit"], "graphs": ["ambiguous_links", "zero_weight_links", "error_nodes", "generator", "transcoder_set"]}
    added["graph_nodes"] = ["clerp"]
    for name, before in rows.items():
        after = lake.read(wh, name)
        if name == "labels":  # every row kept; only the enriched batch's autointerp row changed its pass
            keys = zip(after["batch"].to_pylist(), after["label"].to_pylist(), strict=True)
            passes = dict(zip(keys, after["pass"].to_pylist(), strict=True))
            assert passes[("labels-enriched", "autointerp")] == "autointerp_original"
            assert passes[("labels-enriched", "output")] == "output" and sorted(passes.values()).count("autointerp") == 1
            after = after.drop_columns(["pass"]).sort_by("batch")
            before = before.drop_columns(["pass"]).sort_by("batch")
        if name in added:  # schema 6's columns: null in the rows landed before (unit: 'neuron')
            assert all(after[c].null_count == after.num_rows for c in added[name] if c != "unit")
            after = after.drop_columns(added[name])
        assert after.equals(before), name
    assert lake.read(wh, "retractions").num_rows == 0 and lake.read(wh, "label_embeddings").num_rows == 0
    assert "nothing to do" in cli("migrate", wh=wh.root).stderr

    # the migrated lake works: built, then a retraction of its graphs
    assert cli("build", wh=wh.root).returncode == 0
    assert cli("retract", "--atlas", "t", "--all", "--yes", wh=wh.root).returncode == 0
    assert cli("build", wh=wh.root).returncode == 0


def test_migration_stopped_between_a_new_column_and_its_values_runs_again(tmp_path, monkeypatch):
    """A `migrate` killed inside step 5 -> 6, after `atlases.unit` was added but before it was filled,
    left records the current AtlasRecord refuses (unit null): the rerun must not need to read them."""
    from circuitlake import migrations

    wh = warehouse(tmp_path / "wh")
    shutil.copytree(FIXTURE, wh.lake)

    def killed_after_new_columns(w):
        lake.add_missing_columns(w, "atlases")
        raise KeyboardInterrupt  # the process is gone here

    with monkeypatch.context() as m:
        m.setitem(migrations.STEPS, "5", ("6", killed_after_new_columns))
        try:
            migrations.migrate(wh)
        except KeyboardInterrupt:
            pass
    assert lake.lake_version(wh) == "5" and lake.read(wh, "atlases")["unit"].to_pylist() == [None]

    done = cli("migrate", wh=wh.root)
    assert done.returncode == 0 and "5 -> 6" in done.stderr, done.stderr
    assert lake.lake_version(wh) == "6" and lake.read(wh, "atlases")["unit"].to_pylist() == ["neuron"]
