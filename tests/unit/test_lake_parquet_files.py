"""The Spark read of a lake table without delta-spark (circuitlake/lake/parquet_files.py, `lake_format: parquet_files`): one
Parquet relation over exactly the table's active files, partition values put back from each file's name."""

from __future__ import annotations

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from sqlglot import exp

from circuitlake.lake import parquet_files


def _table(path, rows: dict) -> None:
    write_deltalake(str(path), pa.table(rows), partition_by=["atlas"], mode="append")


def test_one_relation_reads_only_the_active_files_with_their_partition_values(tmp_path):
    path = tmp_path / "odd, dir ü"  # a glob character is escaped, a space or a letter not %-escaped (Spark reads both literally)
    _table(path, {"atlas": ["a", "a"], "value": [1, 2]})
    _table(path, {"atlas": ["b"], "value": [3]})
    _table(path, {"atlas": [None], "value": [4]})  # Delta's null partition
    DeltaTable(str(path)).delete("value = 2")  # rewrites a's file: the old one stays on disk, inactive
    query = parquet_files.parquet_files_read(str(path))
    reads = list(query.find_all(exp.ReadParquet))
    assert len(reads) == 1
    glob = reads[0].expressions[0].name
    active = DeltaTable(str(path)).file_uris()
    assert len(active) == 3 and glob.count(",") == len(active)  # the folder name's comma escaped, then one between files
    assert glob.startswith(f"{tmp_path}/odd\\, dir ü/{{")
    for uri in active:
        assert uri.rsplit("/", 1)[1] in glob
    atlas = next(e for e in query.expressions if e.alias == "atlas")
    values = {i.args["true"].sql() for i in atlas.find(exp.Case).args["ifs"]}
    assert values == {"'a'", "'b'", "NULL"}
    assert [e.alias_or_name for e in query.expressions] == ["atlas", "value"]  # the table's schema order


def test_repeated_file_names_are_read_one_relation_per_file(tmp_path, monkeypatch):
    _table(tmp_path / "t", {"atlas": ["a", "b"], "value": [1, 2]})
    schema, files = parquet_files.active_files(str(tmp_path / "t"))
    same = [(uri.rsplit("/", 1)[0] + "/part-0.parquet", partition) for uri, partition in files]
    monkeypatch.setattr(parquet_files, "active_files", lambda _path: (schema, same))
    query = parquet_files.parquet_files_read(str(tmp_path / "t"))
    assert len(list(query.find_all(exp.ReadParquet))) == 2 and isinstance(query, exp.Union)
