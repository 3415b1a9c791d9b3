"""Where a warehouse lives: the one place that turns a warehouse folder into paths."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE.parent  # the checkout (tests and the bench only)
WAREHOUSE_ENV = "CIRCUITLAKE_WAREHOUSE"
MEMORY_ENV = "CIRCUITLAKE_MEMORY"  # DuckDB's memory budget for builds and queries, e.g. "5GB"
THREADS_ENV = "CIRCUITLAKE_THREADS"  # DuckDB (and Infomap) threads; default: every core
MERGE_ROWS_ENV = "CIRCUITLAKE_MERGE_ROWS"  # input rows one merge aggregates at once; default: from the memory budget
DEFAULT_MEMORY = "5GB"  # leaves room on a 24 GB machine for the ingest workers and the OS
BYTES_PER_MERGED_ROW = 42  # budget per partial row merged at once (measured: 120M rows fit 5 GB without spilling much)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
LOCAL_GATEWAY = "local"  # the DuckDB gateway: the warehouse file that clustering, search and queries read
GATEWAY_ENV = "CIRCUITLAKE_GATEWAY"  # the sqlmesh_config.yaml gateway builds run on: local (DuckDB, default) | spark
PROJECT_ENV = "CIRCUITLAKE_PROJECT"  # a SQLMesh project folder (`circuitlake init DIR`) to use instead of the shipped one


def project_root() -> Path:
    """The SQLMesh project (models/, audits/, macros/, materializations/, prompts/, sqlmesh_config.yaml):
    $CIRCUITLAKE_PROJECT, else the checkout's root, else a copy of the one a wheel ships in
    circuitlake/project/. SQLMesh treats code under site-packages as a library (it neither tracks the
    macros' variables nor fingerprints them), so an installed project runs from a copy in the user's
    cache, one per content hash: an upgrade gets a fresh copy."""
    chosen = os.environ.get(PROJECT_ENV)
    if chosen:
        return Path(chosen).expanduser().resolve()
    if (REPO_ROOT / "sqlmesh_config.yaml").exists():
        return REPO_ROOT
    shipped = PACKAGE / "project"
    files = sorted(p for p in shipped.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    digest = hashlib.sha256(b"".join(str(p.relative_to(shipped)).encode() + p.read_bytes() for p in files)).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "circuitlake" / f"project-{digest}"
    if not cache.exists():
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        shutil.copytree(shipped, tmp, ignore=shutil.ignore_patterns("__pycache__"))
        try:
            tmp.rename(cache)
        except OSError:  # another process copied it first
            shutil.rmtree(tmp, ignore_errors=True)
    return cache


def lake_of(root: str | os.PathLike) -> Path:
    """The Delta lake of the warehouse at `root`."""
    return Path(root) / "lake"


@dataclass(frozen=True)
class Warehouse:
    """A warehouse folder: the Delta lake under `lake/`, the published DuckDB file and SQLMesh state beside it."""

    root: Path

    @property
    def lake(self) -> Path:
        return lake_of(self.root)

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

    def built_record_of(self, gateway: str) -> Path:
        """`built_record` of a gateway's build: the local one above, another's in its own folder."""
        return self.built_record if gateway == LOCAL_GATEWAY else self.root / gateway / "built_lake.json"

    @property
    def last_audit(self) -> Path:
        """The latest audit report as JSON (written by `circuitlake audit`; status and reports read it)."""
        return self.root / "last_audit.json"

    @property
    def spill(self) -> Path:
        """Where DuckDB spills what does not fit in the memory budget (same disk as the warehouse). A
        warehouse path with a quote gets a quote-free link to that folder in the system temp folder:
        SQLMesh pastes temp_directory into SQL unescaped."""
        spill = self.root / ".spill"
        if "'" not in str(spill):
            return spill
        link = Path(tempfile.gettempdir()) / f"circuitlake-spill-{hashlib.sha256(str(spill).encode()).hexdigest()[:12]}"
        if not link.is_symlink():
            spill.mkdir(parents=True, exist_ok=True)
            link.symlink_to(spill, target_is_directory=True)
        return link

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
