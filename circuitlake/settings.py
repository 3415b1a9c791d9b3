"""Where a warehouse lives: the one place that turns a warehouse folder into paths."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
WAREHOUSE_ENV = "CIRCUITLAKE_WAREHOUSE"


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

    def table(self, name: str) -> Path:
        """Absolute path of a lake table (absolute, because DuckDB resolves relative paths against its cwd)."""
        return self.lake / name


def warehouse(path: str | os.PathLike | None = None) -> Warehouse:
    """The warehouse at `path`, else `$CIRCUITLAKE_WAREHOUSE`, else `./warehouse`; always absolute."""
    chosen = path or os.environ.get(WAREHOUSE_ENV) or "warehouse"
    return Warehouse(Path(chosen).expanduser().resolve())
