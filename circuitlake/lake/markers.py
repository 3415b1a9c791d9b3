"""The questions asked of `ingest_batches`, the lake's batch markers: one row per committed batch.

A batch is committed once its marker exists (circuitlake.lake.commit); every reader that needs to know
what landed asks here, never reads the marker table with filters of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from circuitlake.lake.io import read
from circuitlake.settings import Warehouse

FILE_JOBS = frozenset({"graphs", "labels", "wiring"})  # jobs whose inputs are the files they landed


@dataclass(frozen=True)
class Inputs:
    """A marker's `inputs`, typed: the files a batch landed (graph, label, wiring files) or the facts a job
    recorded about itself (`key:value` strings in the lake: template sha, model, layer, OpenAI batch id)."""

    files: tuple[str, ...] = ()
    facts: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, job: str, values: list[str] | None) -> Inputs:
        values = values or []
        if job in FILE_JOBS:
            return cls(files=tuple(values))
        return cls(facts=tuple(tuple(v.split(":", 1)) for v in values if ":" in v))  # type: ignore[misc]

    @classmethod
    def recording(cls, **facts: object) -> list[str]:
        """The `inputs` strings that record `facts` (`openai_batch=` is written `openai-batch:`, `pass_=` `pass:`)."""
        return [f"{k.rstrip('_').replace('_', '-')}:{v}" for k, v in facts.items()]

    def fact(self, key: str) -> str | None:
        return dict(self.facts).get(key)


@dataclass(frozen=True)
class Marker:
    """One `ingest_batches` row."""

    atlas: str
    batch: str
    job: str
    source: str | None
    started_at: datetime
    finished_at: datetime
    version: str
    inputs: list[str]
    content_hash: str
    landed: int
    skipped: int
    rejected: int
    rows: str  # JSON: rows written per table

    @property
    def recorded(self) -> Inputs:
        return Inputs.of(self.job, self.inputs)

    def row(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def markers(
    wh: Warehouse, atlas: str | None = None, job: str | None = None, source: str | None = None, version: int | None = None
) -> list[Marker]:
    """The committed batches (of one atlas, job, source when given; as of Delta `version` when given), by batch id."""
    filters = [(k, "=", v) for k, v in (("atlas", atlas), ("job", job), ("source", source)) if v is not None]
    rows = read(wh, "ingest_batches", filters=filters or None, version=version).to_pylist()
    return sorted((Marker(**{**r, "inputs": r["inputs"] or []}) for r in rows), key=lambda m: m.batch)


def committed_batches(wh: Warehouse, atlas: str, job: str | None = None) -> set[str]:
    """Batch ids whose `ingest_batches` row exists: the only batches readers may trust."""
    filters = [("atlas", "=", atlas)] + ([("job", "=", job)] if job else [])
    return set(read(wh, "ingest_batches", ["batch"], filters)["batch"].to_pylist())


def landed_hashes(wh: Warehouse, atlas: str, job: str) -> set[str]:
    """Content hashes of a job's committed batches: what a re-run of the same input would land again."""
    return set(read(wh, "ingest_batches", ["content_hash"], [("atlas", "=", atlas), ("job", "=", job)])["content_hash"].to_pylist())


def latest_hash(wh: Warehouse, atlas: str, job: str, source: str) -> str | None:
    """The content hash of a source's latest committed batch (None: the source never landed)."""
    found = markers(wh, atlas, job, source)
    return found[-1].content_hash if found else None
