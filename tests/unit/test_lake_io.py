"""The lake's table catalogue and IO (circuitlake/lake/catalogue.py, io.py): real Delta tables in a temporary folder."""

from __future__ import annotations

import pyarrow as pa
import pytest

from circuitlake import lake
from circuitlake.errors import UserError
from circuitlake.settings import warehouse


@pytest.fixture
def wh(tmp_path):
    w = warehouse(tmp_path / "w")
    lake.ensure(w)
    return w


def test_catalogue_every_batch_table_carries_its_atlas_and_partitions_by_its_columns():
    for t in lake.TABLES.values():
        names = t.schema.names
        assert "atlas" in names, t.name
        assert set(t.partition_by) <= set(names), t.name
        assert "atlas" not in lake.row_schema(t.name).names and "batch" not in lake.row_schema(t.name).names
    assert "cluster_runs" not in lake.INGESTED and "graphs" in lake.INGESTED


def test_ensure_creates_every_table_stamped_and_is_idempotent(wh):
    assert lake.lake_version(wh) == lake.SCHEMA_VERSION
    before = lake.versions(wh, tuple(lake.TABLES))
    lake.ensure(wh)
    assert lake.versions(wh, tuple(lake.TABLES)) == before  # a second ensure writes nothing


def test_no_lake_has_no_version_and_an_older_lake_is_refused_untouched(tmp_path, wh):
    assert lake.lake_version(warehouse(tmp_path / "none")) is None
    assert not (tmp_path / "none").exists()  # asking creates nothing
    lake.stamp(wh, "graphs", str(int(lake.SCHEMA_VERSION) - 1))
    with pytest.raises(lake.LakeOutdated, match="circuitlake migrate"):
        lake.ensure(wh)
    for name in lake.TABLES:  # a newer circuitlake migrated every table
        lake.stamp(wh, name, str(int(lake.SCHEMA_VERSION) + 1))
    with pytest.raises(UserError, match="upgrade circuitlake"):
        lake.ensure(wh)


def _atlas_row(name: str, layers: int = 2) -> pa.Table:
    row = {"atlas": name, "model_id": "m", "num_layers": layers, "neurons_per_layer": 4, "universe": "grid", "unit": "neuron"}
    return pa.Table.from_pylist([row], lake.TABLES["atlases"].schema)


def test_append_replace_read_and_time_travel(wh):
    v0 = lake.versions(wh, ("atlases",))["atlases"]
    lake.append(wh, "atlases", _atlas_row("a").slice(0, 0))
    assert lake.versions(wh, ("atlases",))["atlases"] == v0  # an empty append is no commit
    lake.append(wh, "atlases", _atlas_row("a"))
    lake.append(wh, "atlases", _atlas_row("b"))
    lake.replace(wh, "atlases", _atlas_row("a", layers=9), "atlas = 'a'")
    rows = {r["atlas"]: r["num_layers"] for r in lake.read(wh, "atlases", ["atlas", "num_layers"]).to_pylist()}
    assert rows == {"a": 9, "b": 2}
    past = lake.read(wh, "atlases", ["atlas", "num_layers"], version=v0 + 1).to_pylist()
    assert past == [{"atlas": "a", "num_layers": 2}]
    lake.delete(wh, "atlases", "atlas = 'b'")
    assert lake.read(wh, "atlases", ["atlas"])["atlas"].to_pylist() == ["a"]


def test_data_changed_ignores_commits_that_change_no_row(wh):
    lake.append(wh, "atlases", _atlas_row("a"))
    since = lake.versions(wh, ("atlases",))["atlases"]
    lake.stamp(wh, "atlases", lake.SCHEMA_VERSION)  # a metadata commit
    assert not lake.data_changed(wh, "atlases", since)
    lake.update(wh, "atlases", {"num_layers": "3"}, "atlas = 'a'")
    assert lake.data_changed(wh, "atlases", since)


def test_active_files_lists_what_a_reader_reads_with_partition_values(wh):
    lake.append(wh, "atlases", _atlas_row("a"))
    lake.replace(wh, "atlases", _atlas_row("a", layers=5), "atlas = 'a'")
    schema, files = lake.active_files(str(wh.table("atlases")))
    assert "atlas" in schema.names and len(files) == 1  # the replaced file is gone
    assert files[0][0].startswith("file://")
