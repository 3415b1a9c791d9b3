"""The commit protocol every job that writes the lake shares: one batch = one Delta commit per table, marker last.

A batch's data tables are appended first and its `ingest_batches` row (the marker) last; until that row
exists the batch is invisible to readers, and `discard_uncommitted` removes it on the next run.
Rejects are deduplicated by `reject_key`, so re-running an ingest adds no duplicate rejects.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from circuitlake import __version__
from circuitlake.lake.catalogue import TABLES, row_schema
from circuitlake.lake.io import append, delete, read, replace
from circuitlake.lake.markers import committed_batches
from circuitlake.progress import console, printable
from circuitlake.settings import Warehouse


def now() -> datetime:
    return datetime.now(UTC)


def new_batch_id(job: str) -> str:
    """Sortable, unique: '<job>-<UTC time>-<random>'."""
    return f"{job}-{now():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"


def content_hash(hashes: list[str]) -> str:
    """A batch's content hash: sha256 over the sorted hashes of the records it landed."""
    return hashlib.sha256("".join(sorted(hashes)).encode()).hexdigest()


def reject_key(atlas: str, content_hash: str, record: str, reason: str) -> str:
    return hashlib.sha256("\x1f".join((atlas, content_hash, record, reason)).encode()).hexdigest()


def known_reject_keys(wh: Warehouse, atlas: str) -> set[str]:
    return set(read(wh, "rejects", ["reject_key"], [("atlas", "=", atlas)])["reject_key"].to_pylist())


@dataclass
class Reject:
    file: str
    record: str
    reason: str
    content_hash: str

    @classmethod
    def invalid(cls, file: str, record: str, error, content_hash: str) -> Reject:
        """A reject for a pydantic ValidationError; the record gets the error's JSON path appended."""
        first = error.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        where = ".".join(p for p in (record, path) if p) or "file"
        more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
        return cls(file, where, f"{first['msg']}{more}", content_hash)

    def line(self) -> str:
        """The one-line error shown to the user."""
        return printable(f"rejected {self.file} [{self.record}]: {self.reason}")


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
    written: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self.batch = self.batch or new_batch_id(self.job)

    def add(self, table: str, rows: pa.Table) -> None:
        self.tables.setdefault(table, []).append(rows)

    def rows(self, table: str) -> int:
        return sum(t.num_rows for t in self.tables.get(table, []))

    def spill(self, table: str) -> None:
        """Write the table's pending rows now (invisible to readers until `commit` writes the marker)."""
        parts = self.tables.pop(table, [])
        if parts:
            self.written[table] = self.written.get(table, 0) + self._append(table, pa.concat_tables(parts))

    def _append(self, name: str, data: pa.Table) -> int:
        data = data.append_column("atlas", pa.repeat(pa.scalar(self.atlas, pa.string()), data.num_rows))
        data = data.append_column("batch", pa.repeat(pa.scalar(self.batch, pa.string()), data.num_rows))
        append(self.wh, name, data)
        return data.num_rows

    @property
    def empty(self) -> bool:
        return not self.hashes and not self.rejects

    def commit(self, table_order: list[str], seen_rejects: set[str]) -> dict[str, int]:
        """Append data tables in `table_order`, then new rejects, then the marker row. No-op when empty."""
        if self.empty:
            return {}
        for name in table_order:
            self.spill(name)
        counts = dict(self.written)
        fresh = []
        for r in self.rejects:
            key = reject_key(self.atlas, r.content_hash, r.record, r.reason)
            if key not in seen_rejects:
                seen_rejects.add(key)
                fresh.append(
                    {
                        "atlas": self.atlas,
                        "batch": self.batch,
                        "job": self.job,
                        "file": r.file,
                        "record": r.record,
                        "reason": r.reason,
                        "reject_key": key,
                        "rejected_at": now(),
                    }
                )
        if not self.hashes and not fresh:
            return counts  # only rejects already recorded: a re-run adds nothing
        append(self.wh, "rejects", pa.Table.from_pylist(fresh, TABLES["rejects"].schema))
        counts["rejects"] = len(fresh)
        marker = {
            "atlas": self.atlas,
            "batch": self.batch,
            "job": self.job,
            "source": self.source,
            "started_at": self.started_at,
            "finished_at": now(),
            "version": __version__,
            "inputs": self.inputs,
            "content_hash": content_hash(self.hashes),
            "landed": len(self.hashes),
            "skipped": self.skipped,
            "rejected": len(fresh),
            "rows": rows_json(counts),
        }
        append(self.wh, "ingest_batches", pa.Table.from_pylist([marker], TABLES["ingest_batches"].schema))
        return counts


class Landing:
    """Rows a long-running job gathers (labels, calls, vectors), committed as one batch of `job` every
    `every` records or `seconds`, and by `commit` at the end: an interruption loses at most that interval."""

    def __init__(
        self, wh: Warehouse, atlas: str, job: str, source: str, inputs: list[str], tables: tuple[str, ...], every: int, seconds: float
    ):
        self.wh, self.atlas, self.job, self.source, self.inputs = wh, atlas, job, source, inputs
        self.tables, self.every, self.seconds = tables, every, seconds
        self._reset()

    def _reset(self) -> None:
        self.rows: dict[str, list[dict]] = {t: [] for t in self.tables}
        self.hashes: list[str] = []
        self.since = time.monotonic()

    def add(self, hashes: list[str], **rows: list[dict]) -> None:
        """Gather records (their content hashes) and their rows per table; commit when one interval is full."""
        self.hashes += hashes
        for table, more in rows.items():
            self.rows[table] += more
        if len(self.hashes) >= self.every or time.monotonic() - self.since >= self.seconds:
            self.commit()

    def commit(self) -> None:
        """Land what was gathered as one batch (nothing when nothing was)."""
        if self.hashes:
            batch = Batch(self.wh, self.atlas, self.job, source=self.source, inputs=self.inputs, hashes=self.hashes)
            for table, rows in self.rows.items():
                batch.add(table, pa.Table.from_pylist(rows, row_schema(table)))
            batch.commit(list(self.tables), set())
        self._reset()


def swap_markers(wh: Warehouse, atlas: str, retired: list[str], new: list[dict]) -> None:
    """Replace the markers of the `retired` batches by `new` marker rows in one commit: at once the
    retired batches are uncommitted (their rows go with `discard_uncommitted`) and the new ones committed."""
    # the predicate names the new batches too: Delta requires the rows written to match it
    listed = ", ".join(f"'{b}'" for b in retired + [m["batch"] for m in new])
    replace(wh, "ingest_batches", pa.Table.from_pylist(new, TABLES["ingest_batches"].schema), f"atlas = '{atlas}' AND batch IN ({listed})")


def discard_uncommitted(wh: Warehouse, atlas: str) -> int:
    """Delete rows an interrupted run left under batches that never committed; returns batches removed."""
    done = committed_batches(wh, atlas)
    stale: set[str] = set()
    for t in TABLES.values():
        if "batch" not in t.schema.names or t.name == "ingest_batches":
            continue
        if t.partition_by == ("atlas", "batch"):
            batches = {p["batch"] for p in DeltaTable(str(wh.table(t.name))).partitions() if p["atlas"] == atlas}
        else:
            batches = set(pc.unique(read(wh, t.name, ["batch"], [("atlas", "=", atlas)])["batch"]).to_pylist())
        orphans = batches - done
        if orphans:
            listed = ", ".join(f"'{b}'" for b in sorted(orphans))
            delete(wh, t.name, f"atlas = '{atlas}' AND batch IN ({listed})")
            stale |= orphans
    return len(stale)


def rows_json(counts: dict[str, int]) -> str:
    return json.dumps(counts, sort_keys=True)


@dataclass
class IngestReport:
    """What one ingest run did; `exit_code` is the CLI's (0 all landed, 1 some records rejected).

    `rejected` counts the records rejected in this run; `rows['rejects']` those newly recorded."""

    landed: int = 0
    skipped: int = 0
    rejected: int = 0
    batches: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    rejects: list[str] = field(default_factory=list)
    noted: dict[str, int] = field(default_factory=dict)  # what landed worth a look (e.g. ambiguous links)

    @property
    def exit_code(self) -> int:
        return 1 if self.rejected else 0

    def count(self, counts: dict[str, int], into: str = "rows") -> None:
        """Add `counts` to `rows` (rows written per table) or to `noted`."""
        totals = getattr(self, into)
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v

    def reject(self, batch: Batch, reject: Reject) -> None:
        """Record a reject in the batch (landed with it) and print its one-line error."""
        batch.rejects.append(reject)
        self.announce(reject)

    def announce(self, reject: Reject) -> None:
        """Count a rejected record and print its one-line error (recorded with a batch elsewhere, or already)."""
        self.rejects.append(reject.line())
        self.rejected += 1
        console.print(reject.line(), style="red", markup=False, soft_wrap=True)
