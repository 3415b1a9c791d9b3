"""Reads and writes of the lake's Delta tables (`<warehouse>/lake/<table>`): create, append, replace,
update, delete, read (with time travel), versions and schema stamps. Each write is one Delta commit."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake
from deltalake.schema import Field as DeltaField

from circuitlake.errors import UserError
from circuitlake.lake.catalogue import INGESTED, SCHEMA_MARK, SCHEMA_VERSION, TABLES
from circuitlake.settings import Warehouse


def _path(wh: Warehouse, name: str) -> str:
    return str(wh.table(name))


class LakeOutdated(UserError):
    """The lake was written by an older schema version: `circuitlake migrate` first."""


def ensure(wh: Warehouse, create: bool = True) -> None:
    """Create every missing lake table, empty, stamped with the lake schema version. Idempotent.
    Refuses (LakeOutdated, UserError) a lake of another schema version: nothing is created in it;
    with `create=False`, also a warehouse that has no lake yet (UserError; nothing is created)."""
    found = lake_version(wh)
    if found is None and not create:
        raise UserError(f"no warehouse at {wh.root}: pass --warehouse, or register an atlas there first (circuitlake atlas add)")
    if found is not None and found != SCHEMA_VERSION:
        if int(found) < int(SCHEMA_VERSION):
            raise LakeOutdated(
                f"the lake at {wh.lake} has schema version {found}; this circuitlake writes {SCHEMA_VERSION}: "
                "run `circuitlake migrate` (after a backup of the lake folder, if you want one)"
            )
        raise UserError(
            f"the lake at {wh.lake} has schema version {found}, newer than this circuitlake's {SCHEMA_VERSION}: upgrade circuitlake"
        )
    create_missing(wh)


def create_missing(wh: Warehouse) -> None:
    """Create the lake tables that do not exist yet, stamped with the current schema version."""
    for t in TABLES.values():
        path = wh.table(t.name)
        if DeltaTable.is_deltatable(str(path)):
            continue
        path.mkdir(parents=True, exist_ok=True)
        DeltaTable.create(
            str(path),
            t.schema,
            partition_by=list(t.partition_by) or None,
            name=t.name,
            description=f"{SCHEMA_MARK}{SCHEMA_VERSION}",
            mode="ignore",
        )


def add_missing_columns(wh: Warehouse, name: str) -> list[str]:
    """Add the columns of the table's current schema that its Delta table lacks (null in every
    existing row), as one metadata commit; returns their names. Idempotent: a migration step."""
    table = DeltaTable(_path(wh, name))
    have = set(pa.schema(table.schema().to_arrow()).names)
    missing = [f for f in TABLES[name].schema if f.name not in have]
    if missing:
        table.alter.add_columns([DeltaField.from_arrow(f) for f in missing])
    return [f.name for f in missing]


def schema_version(wh: Warehouse, name: str) -> str | None:
    """The lake schema version a table is stamped with (None: no such table)."""
    if not DeltaTable.is_deltatable(_path(wh, name)):
        return None
    description = DeltaTable(_path(wh, name)).metadata().description or ""
    return description.removeprefix(SCHEMA_MARK) if description.startswith(SCHEMA_MARK) else "1"


def lake_version(wh: Warehouse) -> str | None:
    """The lake's schema version: the oldest of its tables' (a migration stamps each table last); None for no lake."""
    found = [v for v in (schema_version(wh, name) for name in TABLES) if v is not None]
    return min(found, key=int) if found else None


def stamp(wh: Warehouse, name: str, version: str) -> None:
    """Record that a table now follows schema `version` (one metadata commit)."""
    DeltaTable(_path(wh, name)).alter.set_table_description(f"{SCHEMA_MARK}{version}")


def _conform(name: str, data: pa.Table) -> pa.Table:
    schema = TABLES[name].schema
    return data.select(schema.names).cast(schema)


def append(wh: Warehouse, name: str, data: pa.Table) -> None:
    """Append rows as one Delta commit (nothing is written for an empty table)."""
    if data.num_rows:
        write_deltalake(_path(wh, name), _conform(name, data), mode="append")


def replace(wh: Warehouse, name: str, data: pa.Table, predicate: str) -> None:
    """Atomically replace the rows matching `predicate` by `data` (one commit; old rows stay in time travel)."""
    write_deltalake(_path(wh, name), _conform(name, data), mode="overwrite", predicate=predicate)


def read(wh: Warehouse, name: str, columns: list[str] | None = None, filters=None, version: int | None = None) -> pa.Table:
    """A table's rows (as of Delta `version` when given: time travel until vacuum)."""
    return DeltaTable(_path(wh, name), version=version).to_pyarrow_table(columns=columns, filters=filters)


def active_files(table_path: str) -> tuple[pa.Schema, list[tuple[str, dict[str, str]]]]:
    """A Delta table's schema (partition columns included) and the data files of its current version,
    as absolute file URIs, each with its partition values (which Delta keeps out of the files):
    exactly what a Delta reader reads, never a file that a replace, delete or compaction removed.
    For engines that read Parquet but not Delta."""
    table = DeltaTable(table_path)
    actions = pa.table(table.get_add_actions(flatten=True))
    partitions = [c for c in actions.column_names if c.startswith("partition.")]
    root = table.table_uri.rstrip("/")
    root = root if "://" in root else Path(root).as_uri()
    files = [
        (f"{root}/{path}", {c.removeprefix("partition."): actions[c][i].as_py() for c in partitions})
        for i, path in enumerate(actions["path"].to_pylist())
    ]
    return pa.schema(table.schema().to_arrow()), files


def update(wh: Warehouse, name: str, updates: dict[str, str], predicate: str) -> None:
    """Set columns (SQL expressions) on the rows matching `predicate`, as one commit."""
    DeltaTable(_path(wh, name)).update(updates=updates, predicate=predicate)


def delete(wh: Warehouse, name: str, predicate: str) -> None:
    DeltaTable(_path(wh, name)).delete(predicate)


# commits that change no row: compaction, vacuum, a description change (the schema stamp of a migration)
MAINTENANCE_OPERATIONS = {"OPTIMIZE", "VACUUM START", "VACUUM END", "UPDATE TABLE METADATA"}


def data_changed(wh: Warehouse, name: str, since: int) -> bool:
    """True when a commit after version `since` changed the table's rows (compaction, vacuum and a
    schema stamp do not; a history cleaned up past `since` counts as changed)."""
    table = DeltaTable(_path(wh, name))
    newer = [h for h in table.history(max(table.version() - since, 1)) if h["version"] > since]
    return len(newer) < table.version() - since or any(h["operation"] not in MAINTENANCE_OPERATIONS for h in newer)


def versions(wh: Warehouse, tables: tuple[str, ...] = INGESTED) -> dict[str, int]:
    """The Delta version of each table: any commit (a batch, a delete) moves at least one."""
    return {name: DeltaTable(_path(wh, name)).version() for name in tables}


def log_stamp(wh: Warehouse, name: str) -> int:
    """Changes with every commit to the table (the modification time of its `_delta_log` folder, where
    each commit adds a file): a cheap test of whether a snapshot read earlier is still the latest."""
    return (wh.table(name) / "_delta_log").stat().st_mtime_ns


@lru_cache(maxsize=16)
def _snapshot(table_path: str, stamp: int) -> DeltaTable:
    """A table's current Delta snapshot, its log read once per commit (`stamp`: log_stamp)."""
    return DeltaTable(table_path)


def partition_files(wh: Warehouse, name: str, atlas: str, batch: str) -> list[str]:
    """The local paths of the active Parquet files of one (atlas, batch) partition of a lake table at its
    current version (what a Delta reader of that partition reads; none when the batch left the lake).
    The log is read once per commit to the table, so a reader that needs one partition, not the table,
    costs a file lookup, once per partition and commit (a page reads the same partition of three tables,
    and again on the next request). The files hold no partition columns."""
    return list(_partition_files(_path(wh, name), log_stamp(wh, name), atlas, batch))


@lru_cache(maxsize=256)
def _partition_files(table_path: str, stamp: int, atlas: str, batch: str) -> tuple[str, ...]:
    pruning = [("atlas", "=", atlas), ("batch", "=", batch)]
    return tuple(_snapshot(table_path, stamp).file_uris(file_pruning_predicate=pruning))


def all_null(wh: Warehouse, name: str, atlas: str, batch: str, column: str) -> bool:
    """Whether `column` is null in every row of one (atlas, batch) partition, told by its Parquet files'
    statistics alone (footers only, no data read); False when a file keeps no null count."""
    for path in partition_files(wh, name, atlas, batch):
        meta = pq.read_metadata(path)
        index = meta.schema.to_arrow_schema().get_field_index(column)
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            stats = group.column(index).statistics
            if stats is None or not stats.has_null_count or stats.null_count != group.num_rows:
                return False
    return True


def bytes_on_disk(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (0 when absent)."""
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0
