"""`circuitlake maintain`: keep the lake and the warehouse small and fast.

The lake: compact, checkpoint, vacuum beyond the retention (jobs/maintain.py). The warehouse: the
SQLMesh janitor drops tables of snapshots past their TTL and no environment uses; ledgers of the
batch-driven layer whose table is gone are dropped with them; a DuckDB checkpoint makes the freed
blocks reusable (DuckDB reuses free blocks but does not shrink its file). Reports bytes before and after.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from circuitlake import lake, locks, project
from circuitlake.app.build import ensure_free
from circuitlake.jobs.maintain import DEFAULT_RETAIN_HOURS, TableMaintenance, maintain_lake
from circuitlake.settings import Warehouse

ORPHAN_LEDGERS = """
select l.table_schema, l.table_name
from information_schema.tables as l
where l.table_name like '%\\_\\_batches' escape '\\'
  and not exists (select 1 from information_schema.tables as t
                  where t.table_schema = l.table_schema and t.table_name || '__batches' = l.table_name)
"""


@dataclass
class MaintenanceReport:
    lake_before: int
    lake_after: int = 0
    warehouse_before: int = 0
    warehouse_after: int = 0
    warehouse_free_after: int = 0  # bytes of free blocks in the DuckDB file, reused by later builds
    tables: list[TableMaintenance] = field(default_factory=list)
    dropped_ledgers: int = 0


@locks.writes_warehouse("maintain")
def _warehouse(wh: Warehouse, report: MaintenanceReport) -> None:
    """Janitor, orphan ledgers, checkpoint."""
    ensure_free(wh)
    ctx = project.context(wh)
    try:
        ctx.run_janitor(ignore_ttl=False)
        adapter = ctx.engine_adapter
        orphans = adapter.fetchall(ORPHAN_LEDGERS)
        for schema, name in orphans:
            adapter.execute(f'drop table "{schema}"."{name}"')
        report.dropped_ledgers = len(orphans)
        adapter.execute("checkpoint")
        block_size, free_blocks = adapter.fetchone(
            "select block_size, free_blocks from pragma_database_size() where database_name = current_database()"
        )
        report.warehouse_free_after = block_size * free_blocks
    finally:
        ctx.close()


def maintain(wh: Warehouse, atlas: str | None = None, retain_hours: int | None = None) -> MaintenanceReport:
    """Maintain the lake (the atlas's partitions, or all) and, when one exists, the warehouse."""
    report = MaintenanceReport(lake_before=lake.bytes_on_disk(wh.lake), warehouse_before=lake.bytes_on_disk(wh.duckdb))
    report.tables = maintain_lake(wh, atlas, DEFAULT_RETAIN_HOURS if retain_hours is None else retain_hours)
    if wh.duckdb.exists():
        _warehouse(wh, report)
    report.lake_after, report.warehouse_after = lake.bytes_on_disk(wh.lake), lake.bytes_on_disk(wh.duckdb)
    return report
