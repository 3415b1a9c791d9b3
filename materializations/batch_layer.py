"""Materializations of the batch-driven layer: builds whose cost follows the new lake batches.

SQLMesh re-evaluates a model only when it is restated, and restating a FULL model rewrites every row.
These two kinds let a restatement do only the new work:

* `append_batches`: the model's query selects lake batches the table does not hold yet (it reads
  itself) and aggregates them; the query is inserted, never replacing rows. It runs while a pass
  takes a batch (asked of the ledger first: no pass runs for nothing), so a query that takes `n`
  batches per pass (LIMIT) keeps each pass's aggregate small, whatever the backlog. Re-running adds
  nothing; an interrupted run leaves whole passes behind, and the next run goes on from there. With
  an `order_by` property each pass is inserted sorted by it, so a lookup on those columns reads one
  narrow row group range per pass, not the whole table (DuckDB zone maps). The CTE that reads the
  table itself is answered from a ledger, `<table>__batches`: the (atlas, batch, seq) of every batch
  a pass took (the query's `new_batches` CTE, numbered by its `pass` CTE: macros/batch_passes.py),
  written in the same transaction as the pass's rows. Finding the new batches never rescans the (large) table, and the rows need not name
  their batch: a pass may aggregate its batches together.
* `upsert_keys`: the query returns the rows of the keys that changed; the rows with those keys are
  deleted and the new ones inserted, in one transaction, sorted by `order_by` so zone maps keep
  pruning lookups on those columns. When the table is empty (a first build, where every key
  changes), the query runs once per hash bucket of the `bucket_by` columns, one bucket per
  `$CIRCUITLAKE_MERGE_ROWS` rows (default: from the memory budget) of its input CTE `bucket_cte`, so each run's aggregate fits the memory
  budget instead of spilling the whole merge to disk. The bucket filter goes into that CTE (DuckDB
  does not push it through joins and aggregates); each bucket rescans the input, so buckets are few.

A new physical table (first build, breaking model change) starts empty, so the same queries then
rebuild everything from raw. Neither ever truncates: a restatement of an upstream model means
"bring new batches in", not "start over".
"""

from __future__ import annotations

import typing as t

from sqlglot import exp
from sqlmesh import CustomMaterialization
from sqlmesh.core.model import Model

from circuitlake.batch_tables import delete_rows, ledger_of
from circuitlake.settings import budget


def _columns(model: Model, prop: str) -> list[str]:
    value = model.kind.materialization_properties.get(prop)
    if value is None:
        raise ValueError(f"{model.name}: materialization property '{prop}' is required")
    items = value.expressions if isinstance(value, (exp.Tuple, exp.Array)) else [value]
    return [i.name for i in items]


def _rows(adapter, table: str) -> int:
    return adapter.fetchone(f"select count(*) from {table}")[0]


def _buckets(adapter, query: exp.Query, model: Model) -> int:
    """How many buckets a first build merges in: one per `budget().merge_rows` rows of the
    `bucket_cte` input (counted), so small lakes merge in one go and big ones never aggregate more at
    once. 1 for a model without `bucket_by`."""
    if model.kind.materialization_properties.get("bucket_by") is None:
        return 1
    cte = _cte(query, model)
    count = exp.select(exp.func("count", exp.Star())).from_(cte.alias)
    count.set(cte.parent.arg_key, cte.parent.copy())  # the query's WITH clause
    return max(1, -(-adapter.fetchone(count)[0] // budget().merge_rows))


def _cte(query: exp.Query, model: Model) -> exp.CTE:
    name = model.kind.materialization_properties.get("bucket_cte")
    ctes = [c for c in query.find_all(exp.CTE) if name is not None and c.alias == name.name]
    if not ctes:
        raise ValueError(f"{model.name}: materialization property 'bucket_cte' must name a CTE of the query")
    return ctes[0]


def _bucket(query: exp.Query, model: Model, bucket: int, buckets: int, dialect: str) -> exp.Query:
    """The query's rows whose `bucket_by` columns hash to `bucket`. The filter also goes into the CTE
    named by `bucket_cte` (DuckDB does not push it down through joins and aggregates), so each
    bucket's aggregate reads only its share of the input."""

    def where(alias: str) -> exp.Expression:
        hashed = exp.func("hash", *(exp.column(c, table=alias) for c in _columns(model, "bucket_by")))
        n = exp.Literal.number(buckets)
        # DuckDB's hash is unsigned; Spark's is a signed int, whose remainder pmod keeps in [0, n)
        bucket_of = exp.Mod(this=hashed, expression=n) if dialect == "duckdb" else exp.func("pmod", hashed, n)
        return exp.EQ(this=bucket_of, expression=exp.Literal.number(bucket))

    query = query.copy()
    cte = _cte(query, model)
    cte.set("this", exp.select("*").from_(cte.this.subquery("b")).where(where("b")))
    return exp.select("*").from_(query.subquery("q")).where(where("q"))


LEDGER = ("atlas", "batch", "seq")  # a ledger's columns: the batches each pass took


class AppendBatches(CustomMaterialization):
    """Insert the query's rows, pass after pass, while a pass takes a batch (see the module docstring)."""

    NAME = "append_batches"

    def insert(
        self, table_name: str, query_or_df: t.Any, model: Model, is_first_insert: bool, render_kwargs: dict, **kwargs: t.Any
    ) -> None:
        adapter = self.adapter
        own = _reading_itself(query_or_df, exp.to_table(table_name))
        if own is None:
            raise ValueError(f"{model.name}: an append_batches query reads its own table in a CTE (`previous`)")
        ledger = ledger_of(table_name)
        ledger_sql = ledger.sql(dialect=adapter.dialect, identify=True)
        if not adapter.table_exists(ledger):
            # once per physical table: empty for a new one; from its rows for a table older than ledgers, whose
            # rows each name their batch (a table whose pass aggregates batches together is born with its ledger)
            adapter.execute(f"create table {ledger_sql} as select distinct {', '.join(LEDGER)} from {table_name}")
        own.set("this", exp.select(*LEDGER).from_(ledger))
        taken_query = _batches_taken(query_or_df)
        taken = taken_query.sql(dialect=adapter.dialect)
        batches_left = taken_query.select(exp.func("count", exp.Star()), append=False).sql(dialect=adapter.dialect)
        if model.kind.materialization_properties.get("order_by") is not None:
            query_or_df = exp.select("*").from_(query_or_df.subquery("pass_rows")).order_by(*_columns(model, "order_by"))
        # a pass runs only when it takes a batch: asking the ledger is cheap, an empty pass of the query is not
        # (0.1-0.2 s a model at 100M links, for nothing)
        while adapter.fetchone(batches_left)[0]:
            with adapter.transaction():
                adapter.insert_append(table_name, query_or_df, target_columns_to_types=model.columns_to_types)
                adapter.execute(f"insert into {ledger_sql} ({', '.join(LEDGER)}) {taken}")  # read before this insert: the same batches


def _batches_taken(query: exp.Query) -> exp.Query:
    """The (atlas, batch, seq) of the batches the query's pass takes: its `new_batches` CTE numbered
    by its `pass` CTE, under the query's WITH clause."""
    ctes = {c.alias: c for c in query.find_all(exp.CTE)}
    if not {"new_batches", "pass"} <= ctes.keys():
        raise ValueError("an append_batches query names its batches and its pass number in CTEs `new_batches` and `pass`")
    with_ = ctes["new_batches"].parent
    taken = exp.select("n.atlas", "n.batch", "p.seq").from_("new_batches as n").join("pass as p", join_type="cross")
    taken.set(with_.arg_key, with_.copy())
    return taken


def _reading_itself(query: exp.Query, target: exp.Table) -> exp.CTE | None:
    """The CTE that reads the model's own table (`previous`), when the query has one."""
    for cte in query.find_all(exp.CTE):
        if any(tbl.name == target.name and tbl.db == target.db for tbl in cte.this.find_all(exp.Table)):
            return cte
    return None


class UpsertKeys(CustomMaterialization):
    """Replace the rows whose `key` the query returns by the query's rows (see the module docstring)."""

    NAME = "upsert_keys"

    def insert(
        self, table_name: str, query_or_df: t.Any, model: Model, is_first_insert: bool, render_kwargs: dict, **kwargs: t.Any
    ) -> None:
        adapter = self.adapter
        key = _columns(model, "key")
        order_by = _columns(model, "order_by")
        columns = list(model.columns_to_types or {})
        target = exp.to_table(table_name)
        changed = exp.table_(f"{target.name}__changed", db=target.db, catalog=target.catalog)
        changed_sql = changed.sql(dialect=adapter.dialect, identify=True)
        adapter.drop_table(changed)  # left behind by an interrupted run
        buckets = _buckets(adapter, query_or_df, model) if _rows(adapter, table_name) == 0 else 1
        if buckets == 1:
            adapter.ctas(changed, query_or_df, model.columns_to_types, exists=False)
        else:
            adapter.ctas(changed, query_or_df.limit(0), model.columns_to_types, exists=False)
            for bucket in range(buckets):
                part = _bucket(query_or_df, model, bucket, buckets, adapter.dialect)
                adapter.insert_append(changed, part, target_columns_to_types=model.columns_to_types)
        try:
            matched = " and ".join(f"t.{k} = c.{k}" for k in key)  # key columns are never null
            with adapter.transaction():
                delete_rows(adapter, target, matched, using=changed)
                adapter.execute(
                    f"insert into {table_name} ({', '.join(columns)}) "
                    f"select {', '.join(columns)} from {changed_sql} order by {', '.join(order_by)}"
                )
        finally:
            adapter.drop_table(changed)
