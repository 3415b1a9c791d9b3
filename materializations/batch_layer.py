"""Materializations of the batch-driven layer: builds whose cost follows the new lake batches.

SQLMesh re-evaluates a model only when it is restated, and restating a FULL model rewrites every row.
These two kinds let a restatement do only the new work:

* `append_batches`: the model's query selects lake batches the table does not hold yet (it reads
  itself) and aggregates them; the query is inserted, never replacing rows. It runs again until a
  pass inserts nothing, so a query that takes `n` batches per pass (LIMIT) keeps each pass's
  aggregate small, whatever the backlog. Re-running adds nothing; an interrupted run leaves whole
  passes behind, and the next run goes on from there.
* `upsert_keys`: the query returns the rows of the keys that changed; the rows with those keys are
  deleted and the new ones inserted, in one transaction, sorted by `order_by` so zone maps keep
  pruning lookups on those columns. When the table is empty (a first build, where every key
  changes), the query runs once per hash bucket of the `bucket_by` columns (`buckets` of them), so
  each run's aggregate fits the memory budget instead of spilling the whole merge to disk.

A new physical table (first build, breaking model change) starts empty, so the same queries then
rebuild everything from raw. Neither ever truncates: a restatement of an upstream model means
"bring new batches in", not "start over".
"""

from __future__ import annotations

import typing as t

from sqlglot import exp
from sqlmesh import CustomMaterialization
from sqlmesh.core.model import Model


def _columns(model: Model, prop: str) -> list[str]:
    value = model.kind.materialization_properties.get(prop)
    if value is None:
        raise ValueError(f"{model.name}: materialization property '{prop}' is required")
    items = value.expressions if isinstance(value, (exp.Tuple, exp.Array)) else [value]
    return [i.name for i in items]


def _int(model: Model, prop: str, default: int) -> int:
    value = model.kind.materialization_properties.get(prop)
    return int(value.name if isinstance(value, exp.Expr) else value) if value is not None else default


def _rows(adapter, table: str) -> int:
    return adapter.fetchone(f"select count(*) from {table}")[0]


class AppendBatches(CustomMaterialization):
    """Insert the query's rows, pass after pass, until a pass inserts nothing (see the module docstring)."""

    NAME = "append_batches"

    def insert(self, table_name: str, query_or_df: t.Any, model: Model, is_first_insert: bool,
               render_kwargs: dict, **kwargs: t.Any) -> None:
        adapter = self.adapter
        before = _rows(adapter, table_name)
        while True:
            adapter.insert_append(table_name, query_or_df, target_columns_to_types=model.columns_to_types)
            after = _rows(adapter, table_name)
            if after == before:
                return
            before = after


class UpsertKeys(CustomMaterialization):
    """Replace the rows whose `key` the query returns by the query's rows (see the module docstring)."""

    NAME = "upsert_keys"

    def insert(self, table_name: str, query_or_df: t.Any, model: Model, is_first_insert: bool,
               render_kwargs: dict, **kwargs: t.Any) -> None:
        adapter = self.adapter
        key = _columns(model, "key")
        order_by = _columns(model, "order_by")
        columns = list(model.columns_to_types or {})
        target = exp.to_table(table_name)
        changed = exp.table_(f"{target.name}__changed", db=target.db, catalog=target.catalog)
        changed_sql = changed.sql(dialect=adapter.dialect, identify=True)
        adapter.drop_table(changed)  # left behind by an interrupted run
        buckets = _int(model, "buckets", 1) if _rows(adapter, table_name) == 0 else 1
        if buckets == 1:
            adapter.ctas(changed, query_or_df, model.columns_to_types, exists=False)
        else:
            hashed = exp.func("hash", *(exp.column(c, table="q") for c in _columns(model, "bucket_by")))
            adapter.ctas(changed, query_or_df.limit(0), model.columns_to_types, exists=False)
            for bucket in range(buckets):
                part = exp.select("*").from_(query_or_df.subquery("q")).where(
                    exp.EQ(this=exp.Mod(this=hashed, expression=exp.Literal.number(buckets)),
                           expression=exp.Literal.number(bucket)))
                adapter.insert_append(changed, part, target_columns_to_types=model.columns_to_types)
        try:
            matched = " and ".join(f"t.{k} = c.{k}" for k in key)  # key columns are never null
            with adapter.transaction():
                adapter.execute(f"delete from {table_name} as t using {changed_sql} as c where {matched}")
                adapter.execute(f"insert into {table_name} ({', '.join(columns)}) "
                                f"select {', '.join(columns)} from {changed_sql} order by {', '.join(order_by)}")
        finally:
            adapter.drop_table(changed)
