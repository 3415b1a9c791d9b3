"""The physical tables of the batch-driven layer (materializations/batch_layer.py) as the build sees them:
each `append_batches` table's ledger, deleting rows on any engine, and forgetting an atlas's rows
after a retraction."""

from __future__ import annotations

from sqlglot import exp

ROW_DELETES = ("duckdb",)  # engines that delete rows of the tables SQLMesh creates (Spark's are Parquet)


def ledger_of(table_name: str) -> exp.Table:
    """The ledger table of an `append_batches` table: `<table>__batches`, next to it."""
    target = exp.to_table(table_name)
    return exp.table_(f"{target.name}__batches", db=target.db, catalog=target.catalog)


def delete_rows(adapter, table: exp.Table, condition: str, using: exp.Table | None = None) -> None:
    """Delete the rows of `table` (alias `t`) for which `condition` holds, joined with `using` (alias
    `c`) when given. Engines in ROW_DELETES delete in place, inside the caller's transaction; others
    rewrite the table without those rows through a staging copy (Spark cannot overwrite a table it
    reads), so the cost there is a rewrite of the table."""
    target = table.sql(dialect=adapter.dialect, identify=True)
    if adapter.dialect in ROW_DELETES:
        joined = f" using {using.sql(dialect=adapter.dialect, identify=True)} as c" if using is not None else ""
        adapter.execute(f"delete from {target} as t{joined} where {condition}")
        return
    doomed = condition
    if using is not None:
        doomed = f"exists (select 1 from {using.sql(dialect=adapter.dialect, identify=True)} as c where {condition})"
    staging = exp.table_(f"{table.name}__kept", db=table.db, catalog=table.catalog)
    staging_sql = staging.sql(dialect=adapter.dialect, identify=True)
    adapter.drop_table(staging)
    adapter.execute(f"create table {staging_sql} as select * from {target} as t where not ({doomed})")
    adapter.execute(f"insert overwrite table {target} select * from {staging_sql}")
    adapter.drop_table(staging)


def forget_atlases(adapter, table_names: list[str], atlases: list[str]) -> None:
    """Delete the atlases' rows from these batch-layer tables and their ledgers, in one transaction,
    so the next evaluation derives them again from the lake's current batches (after a retraction:
    appending never removes rows). Each kind's watermark is a global maximum, so the rows derived
    again come after every watermark and are picked up. Idempotent."""
    listed = ", ".join(f"'{a}'" for a in atlases)  # atlas names are validated lowercase identifiers
    with adapter.transaction():
        for name in table_names:
            for table in (exp.to_table(name), ledger_of(name)):
                if adapter.table_exists(table):
                    delete_rows(adapter, table, f"t.atlas in ({listed})")
