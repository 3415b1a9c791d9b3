"""Where a warehouse lives: the one place that turns a warehouse folder into paths."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
WAREHOUSE_ENV = "CIRCUITLAKE_WAREHOUSE"
MEMORY_ENV = "CIRCUITLAKE_MEMORY"  # DuckDB's memory budget for builds and queries, e.g. "5GB"
THREADS_ENV = "CIRCUITLAKE_THREADS"  # DuckDB (and Infomap) threads; default: every core
DEFAULT_MEMORY = "5GB"  # leaves room on a 24 GB machine for the ingest workers and the OS


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

    def duckdb_config(self, wh: Warehouse) -> dict[str, str | int | bool]:
        """DuckDB settings: a memory cap, spilling to the warehouse disk, no insertion-order buffering."""
        return {"memory_limit": self.memory_limit, "threads": self.threads, "temp_directory": str(wh.spill),
                "preserve_insertion_order": False}


def budget() -> Budget:
    """$CIRCUITLAKE_MEMORY (default 5GB) and $CIRCUITLAKE_THREADS (default: all cores)."""
    return Budget(os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY,
                  int(os.environ.get(THREADS_ENV) or os.cpu_count() or 1))
