"""The physical tables of the batch-driven layer (materializations/batch_layer.py) as the build sees them:
each `append_batches` table's ledger, and forgetting an atlas's rows after a retraction."""

from __future__ import annotations

from sqlglot import exp


def ledger_of(table_name: str) -> exp.Table:
    """The ledger table of an `append_batches` table: `<table>__batches`, next to it."""
    target = exp.to_table(table_name)
    return exp.table_(f"{target.name}__batches", db=target.db, catalog=target.catalog)


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
                    adapter.execute(f"delete from {table.sql(dialect=adapter.dialect, identify=True)} where atlas in ({listed})")
