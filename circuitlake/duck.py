"""DuckDB access: the offline `delta` extension bootstrap and warehouse connections with clear errors."""

from __future__ import annotations

import fcntl
import importlib.util
import re
import threading
from pathlib import Path

import duckdb

from circuitlake.errors import UserError, WarehouseBusy
from circuitlake.settings import Warehouse, budget

EXTENSIONS = ("delta", "fts", "vss")  # each ships as a pip package pinned to duckdb 1.5.5 (duckdb-extension-NAME)
_READY: set[str] = set()


def extension_file(extension: str) -> Path:
    """The extension's binary in its pip package (duckdb-extension-NAME), which `INSTALL '<file>'` takes offline."""
    spec = importlib.util.find_spec(f"duckdb_extension_{extension}")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"DuckDB's {extension} extension is not installed: pip install duckdb-extension-{extension}=={duckdb.__version__}")
    return Path(next(iter(spec.submodule_search_locations))) / "extensions" / f"v{duckdb.__version__}" / f"{extension}.duckdb_extension"


def bootstrap(extension: str = "delta") -> None:
    """Install a DuckDB extension from its pip package into ~/.duckdb, once per process (no download).

    Safe across parallel processes: the install runs under a file lock.
    """
    if extension in _READY:
        return
    probe = duckdb.connect()
    try:
        probe.execute(f"LOAD {extension}")
    except duckdb.Error:
        lock = Path.home() / ".duckdb" / f"circuitlake-{extension}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with lock.open("w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                probe.execute(f"LOAD {extension}")
            except duckdb.Error:
                probe.execute(f"INSTALL {sql_string(str(extension_file(extension)))}")
                probe.execute(f"LOAD {extension}")
    finally:
        probe.close()
    _READY.add(extension)


def load(con: duckdb.DuckDBPyConnection, *extensions: str) -> duckdb.DuckDBPyConnection:
    """Load extensions into a connection (bootstrapping each first); returns the connection."""
    for extension in extensions:
        bootstrap(extension)
        con.execute(f"LOAD {extension}")
    return con


def connect(wh: Warehouse, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """Open the warehouse DuckDB file; a file held by another process gives WarehouseBusy."""
    if read_only and not wh.duckdb.exists():
        raise UserError(f"{wh.duckdb} does not exist yet: run `circuitlake build` first")
    try:
        return duckdb.connect(str(wh.duckdb), read_only=read_only, config=budget().duckdb_config(wh))
    except duckdb.IOException as e:
        if "lock" in str(e).lower():
            raise WarehouseBusy(f"{wh.duckdb} is open in another process: close it first, then retry") from None
        raise


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    """The first column of the first row of a query that returns one row (a count, a max)."""
    row = con.execute(sql, params or []).fetchone()
    assert row is not None, sql
    return row[0]


READ_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def sql_string(path: Path | str) -> str:
    """A path as an SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def _quoted(path: Path) -> str:
    """A folder as an SQL string literal ending in '/' (for allowed_directories)."""
    return sql_string(f"{path}/")


def _lake_only(wh: Warehouse) -> duckdb.DuckDBPyConnection:
    """Before the first build: an in-memory session with the `lake` views over the Delta tables (rows
    of committed batches, as the build's views read them), so `select * from lake.rejects` works after
    the first ingest."""
    from circuitlake import lake

    con = load(duckdb.connect(config=budget().duckdb_config(wh)), "delta")
    con.execute("create schema lake")
    marker = f"delta_scan({sql_string(wh.table('ingest_batches'))})"
    for name, table in lake.TABLES.items():
        if not wh.table(name).exists():
            continue
        scan = f"delta_scan({sql_string(wh.table(name))})"
        committed = "batch" in table.schema.names and name != "ingest_batches"
        where = f" as t semi join {marker} as b on t.atlas = b.atlas and t.batch = b.batch" if committed else ""
        con.execute(f"create view lake.{name} as select * from {scan}{where}")
    return con


def connect_for_users(wh: Warehouse) -> duckdb.DuckDBPyConnection:
    """A read-only connection for SQL a user typed: the lake and the spill folder are the only files it
    may touch (no other file read or written, no ATTACH, INSTALL or LOAD), and its settings are locked.
    Before the first build only the `lake` tables are there."""
    con = load(connect(wh, read_only=True), "delta", "fts") if wh.duckdb.exists() else _lake_only(wh)
    con.execute(f"SET allowed_directories = [{_quoted(wh.lake)}, {_quoted(wh.spill)}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


_LEADING = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.S)  # whitespace and comments before a statement
_EXPLAIN = re.compile(r"^explain\s*(?:\([^)]*\)\s*)?(?:analy[sz]e\b\s*)?", re.I)  # EXPLAIN [(options)] [ANALYZE]


def one_read_statement(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """`sql` when it is exactly one SELECT, or an EXPLAIN (ANALYZE runs its statement) of exactly one
    SELECT; UserError otherwise: nothing else may run, since COPY, even under EXPLAIN ANALYZE, writes."""
    statements = con.extract_statements(sql)
    if len(statements) != 1:
        raise UserError(f"query runs exactly one statement; this SQL has {len(statements)}")
    statement = statements[0]
    if statement.type == duckdb.StatementType.EXPLAIN:
        text = _LEADING.sub("", statement.query, count=1)
        explain = _EXPLAIN.match(text)
        inner = text[explain.end() :] if explain else ""
        explained = con.extract_statements(inner) if inner.strip() else []
        if [s.type for s in explained] != [duckdb.StatementType.SELECT]:
            raise UserError("query is read-only: EXPLAIN runs only over one SELECT")
    elif statement.type not in READ_STATEMENTS:
        raise UserError(f"query is read-only: only SELECT or EXPLAIN runs, not {statement.type.name}")
    return sql


def run_limited(con: duckdb.DuckDBPyConnection, sql: str, seconds: float, show) -> None:
    """Run `show(con.sql(sql))`, interrupted after `seconds` (UserError: nothing else is left running)."""
    timer = threading.Timer(seconds, con.interrupt)
    timer.start()
    try:
        show(con.sql(sql))
    except duckdb.InterruptException:
        raise UserError(f"query stopped after {seconds:g} s (--timeout SECONDS allows more)") from None
    finally:
        timer.cancel()
