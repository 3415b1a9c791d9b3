"""Where a warehouse lives: the one place that turns a warehouse folder into paths."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
WAREHOUSE_ENV = "CIRCUITLAKE_WAREHOUSE"
MEMORY_ENV = "CIRCUITLAKE_MEMORY"  # DuckDB's memory budget for builds and queries, e.g. "5GB"
THREADS_ENV = "CIRCUITLAKE_THREADS"  # DuckDB (and Infomap) threads; default: every core
MERGE_ROWS_ENV = "CIRCUITLAKE_MERGE_ROWS"  # input rows one merge aggregates at once; default: from the memory budget
DEFAULT_MEMORY = "5GB"  # leaves room on a 24 GB machine for the ingest workers and the OS
BYTES_PER_MERGED_ROW = 42  # budget per partial row merged at once (measured: 120M rows fit 5 GB without spilling much)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


@dataclass(frozen=True)
class Warehouse:
    """A warehouse folder: the Delta lake under `lake/`, the published DuckDB file and SQLMesh state beside it."""

    root: Path

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def duckdb(self) -> Path:
        return self.root / "circuitlake.duckdb"

    @property
    def state(self) -> Path:
        return self.root / "sqlmesh_state.duckdb"

    @property
    def built_record(self) -> Path:
        """The lake table versions the warehouse was last built from (written by `circuitlake build`)."""
        return self.root / "built_lake.json"

    @property
    def last_audit(self) -> Path:
        """The latest audit report as JSON (written by `circuitlake audit`; status and reports read it)."""
        return self.root / "last_audit.json"

    @property
    def spill(self) -> Path:
        """Where DuckDB spills what does not fit in the memory budget (same disk as the warehouse)."""
        return self.root / ".spill"

    def table(self, name: str) -> Path:
        """Absolute path of a lake table (absolute, because DuckDB resolves relative paths against its cwd)."""
        return self.lake / name


def warehouse(path: str | os.PathLike | None = None) -> Warehouse:
    """The warehouse at `path`, else `$CIRCUITLAKE_WAREHOUSE`, else `./warehouse`; always absolute."""
    chosen = path or os.environ.get(WAREHOUSE_ENV) or "warehouse"
    return Warehouse(Path(chosen).expanduser().resolve())


@dataclass(frozen=True)
class Budget:
    """The resources every DuckDB connection of circuitlake may use: set once, through the environment."""

    memory_limit: str
    threads: int
    merge_rows: int  # rows a bucketed first-build merge aggregates at once (materializations/batch_layer.py)

    def duckdb_config(self, wh: Warehouse) -> dict[str, str | bool | int | float | list[str]]:
        """DuckDB settings: a memory cap, spilling to the warehouse disk, no insertion-order buffering."""
        return {
            "memory_limit": self.memory_limit,
            "threads": self.threads,
            "temp_directory": str(wh.spill),
            "preserve_insertion_order": False,
        }


def memory_bytes(limit: str) -> int:
    """'5GB' -> 5e9, '4GiB' -> 4 * 2**30 (DuckDB's units)."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([a-zA-Z]*)\s*", limit)
    if not m or m[2].lower() not in _UNITS:
        raise ValueError(f"{MEMORY_ENV}={limit!r}: expected a size such as 5GB or 4GiB")
    return int(float(m[1]) * _UNITS[m[2].lower()])


def budget() -> Budget:
    """$CIRCUITLAKE_MEMORY (default 5GB), $CIRCUITLAKE_THREADS (default: all cores) and
    $CIRCUITLAKE_MERGE_ROWS (default: the memory budget / BYTES_PER_MERGED_ROW)."""
    memory = os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY
    merge_rows = os.environ.get(MERGE_ROWS_ENV)
    return Budget(
        memory,
        int(os.environ.get(THREADS_ENV) or os.cpu_count() or 1),
        int(merge_rows) if merge_rows else memory_bytes(memory) // BYTES_PER_MERGED_ROW,
    )
