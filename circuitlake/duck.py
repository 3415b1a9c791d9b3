"""DuckDB access: the offline `delta` extension bootstrap and warehouse connections with clear errors."""

from __future__ import annotations

import fcntl
from pathlib import Path

import duckdb

from circuitlake.errors import UserError, WarehouseBusy
from circuitlake.settings import Warehouse, budget

_READY = False


def bootstrap_delta() -> None:
    """Install DuckDB's `delta` extension from the pip package into ~/.duckdb, once (no download).

    Safe across parallel processes: the install runs under a file lock.
    """
    global _READY
    if _READY:
        return
    probe = duckdb.connect()
    try:
        probe.execute("LOAD delta")
    except duckdb.Error:
        from duckdb_extensions import import_extension

        lock = Path.home() / ".duckdb" / "circuitlake-delta.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with lock.open("w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                probe.execute("LOAD delta")
            except duckdb.Error:
                import_extension("delta", con=probe)
                probe.execute("LOAD delta")
    finally:
        probe.close()
    _READY = True


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


READ_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "/'"


def connect_for_users(wh: Warehouse) -> duckdb.DuckDBPyConnection:
    """A read-only connection for SQL a user typed: the lake and the spill folder are the only files it
    may touch (no other file read or written, no ATTACH, INSTALL or LOAD), and its settings are locked."""
    bootstrap_delta()
    con = connect(wh, read_only=True)
    con.execute("LOAD delta")
    con.execute(f"SET allowed_directories = [{_quoted(wh.lake)}, {_quoted(wh.spill)}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def one_read_statement(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """`sql` when it is exactly one SELECT (or EXPLAIN); UserError otherwise."""
    statements = con.extract_statements(sql)
    if len(statements) != 1:
        raise UserError(f"query runs exactly one statement; this SQL has {len(statements)}")
    if statements[0].type not in READ_STATEMENTS:
        raise UserError(f"query is read-only: only SELECT or EXPLAIN runs, not {statements[0].type.name}")
    return sql
