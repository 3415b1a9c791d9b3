"""The commit protocol every ingest job shares: one batch = one Delta commit per table, marker last.

A batch's data tables are appended first and its `ingest_batches` row last; until that row
exists the batch is invisible to readers, and `lake.discard_uncommitted` removes it on the next run.
Rejects are deduplicated by `reject_key`, so re-running an ingest adds no duplicate rejects.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pyarrow as pa

from circuitlake import __version__, lake
from circuitlake.settings import Warehouse


def now() -> datetime:
    return datetime.now(timezone.utc)


def new_batch_id(job: str) -> str:
    """Sortable, unique: '<job>-<UTC time>-<random>'."""
    return f"{job}-{now():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"


def reject_key(atlas: str, content_hash: str, record: str, reason: str) -> str:
    return hashlib.sha256("\x1f".join((atlas, content_hash, record, reason)).encode()).hexdigest()


def known_reject_keys(wh: Warehouse, atlas: str) -> set[str]:
    return set(lake.read(wh, "rejects", ["reject_key"], [("atlas", "=", atlas)])["reject_key"].to_pylist())


@dataclass
class Reject:
    file: str
    record: str
    reason: str
    content_hash: str

    def line(self) -> str:
        """The one-line error shown to the user."""
        return f"rejected {self.file} [{self.record}]: {self.reason}"


@dataclass
class Batch:
    """Rows gathered for one batch of one job; `commit` lands them and returns rows written per table."""

    wh: Warehouse
    atlas: str
    job: str
    source: str | None = None
    batch: str = ""
    started_at: datetime = field(default_factory=now)
    tables: dict[str, list[pa.Table]] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    skipped: int = 0

    def __post_init__(self):
        self.batch = self.batch or new_batch_id(self.job)

    def add(self, table: str, rows: pa.Table) -> None:
        self.tables.setdefault(table, []).append(rows)

    def rows(self, table: str) -> int:
        return sum(t.num_rows for t in self.tables.get(table, []))

    @property
    def empty(self) -> bool:
        return not self.hashes and not self.rejects

    def commit(self, table_order: list[str], seen_rejects: set[str]) -> dict[str, int]:
        """Append data tables in `table_order`, then new rejects, then the marker row. No-op when empty."""
        counts: dict[str, int] = {}
        if self.empty:
            return counts
        for name in table_order:
            parts = self.tables.get(name, [])
            if parts:
                data = pa.concat_tables(parts)
                data = data.append_column("atlas", pa.array([self.atlas] * data.num_rows, pa.string()))
                data = data.append_column("batch", pa.array([self.batch] * data.num_rows, pa.string()))
                lake.append(self.wh, name, data)
                counts[name] = data.num_rows
        fresh = []
        for r in self.rejects:
            key = reject_key(self.atlas, r.content_hash, r.record, r.reason)
            if key not in seen_rejects:
                seen_rejects.add(key)
                fresh.append({"atlas": self.atlas, "batch": self.batch, "job": self.job, "file": r.file,
                              "record": r.record, "reason": r.reason, "reject_key": key, "rejected_at": now()})
        if not self.hashes and not fresh:
            return counts  # only rejects already recorded: a re-run adds nothing
        lake.append(self.wh, "rejects", pa.Table.from_pylist(fresh, lake.TABLES["rejects"].schema))
        counts["rejects"] = len(fresh)
        marker = {
            "atlas": self.atlas, "batch": self.batch, "job": self.job, "source": self.source,
            "started_at": self.started_at, "finished_at": now(), "version": __version__,
            "inputs": self.inputs, "content_hash": hashlib.sha256("".join(sorted(self.hashes)).encode()).hexdigest(),
            "landed": len(self.hashes), "skipped": self.skipped, "rejected": len(fresh), "rows": lake.rows_json(counts),
        }
        lake.append(self.wh, "ingest_batches", pa.Table.from_pylist([marker], lake.TABLES["ingest_batches"].schema))
        return counts
