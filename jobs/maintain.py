"""The lake half of `circuitlake maintain`: compact, checkpoint and vacuum every Delta table.

Per table: small files are compacted per partition (of the chosen atlas, or all), a Delta checkpoint is
written (readers then replay one Parquet file instead of every JSON commit: what keeps opening a
table with thousands of batch commits fast), files no version newer than the retention needs are
vacuumed, and expired log entries are cleaned up. Compaction commits change no data (`dataChange`
false); vacuum ends time travel beyond the retention. Runs under the write lock of every atlas, so no
writer's not-yet-committed files can be vacuumed.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

from deltalake import DeltaTable

from circuitlake import lake, locks, registry
from circuitlake.settings import Warehouse

DEFAULT_RETAIN_HOURS = 7 * 24  # a week of time travel, like Delta's own default


@dataclass
class TableMaintenance:
    table: str
    files_before: int
    files_after: int
    compacted: int  # files rewritten into larger ones
    vacuumed: int  # files deleted


def maintain_lake(wh: Warehouse, atlas: str | None = None, retain_hours: int = DEFAULT_RETAIN_HOURS) -> list[TableMaintenance]:
    """Compact (the atlas's partitions, or all), checkpoint, vacuum and clean up every lake table."""
    everyone = registry.atlas_names(wh)  # sorted
    names = [atlas] if atlas else everyone
    for name in names:
        registry.get(wh, name)  # an unknown atlas fails before anything changes
    done = []
    with ExitStack() as held:
        for name in everyone:  # one order for every process: no deadlock, fail fast when busy
            held.enter_context(locks.atlas_lock(wh, name, "maintain"))
        for name in names:
            lake.discard_uncommitted(wh, name)
        for t in lake.TABLES.values():
            table = DeltaTable(str(wh.table(t.name)))
            before = len(table.file_uris())
            compacted = 0
            if "atlas" in t.partition_by:
                for name in names:
                    compacted += table.optimize.compact(partition_filters=[("atlas", "=", name)])["numFilesRemoved"]
            elif not atlas:
                compacted += table.optimize.compact()["numFilesRemoved"]
            table.create_checkpoint()
            vacuumed = table.vacuum(retention_hours=retain_hours, dry_run=False, enforce_retention_duration=False)
            table.cleanup_metadata()
            done.append(TableMaintenance(t.name, before, len(table.file_uris()), compacted, len(vacuumed)))
    return done
