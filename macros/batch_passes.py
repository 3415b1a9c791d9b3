"""What one pass of an `append_batches` model takes (materializations/batch_layer.py): the model names
its own rows in a CTE called `previous` (answered from the table's ledger), and these macros read it."""

from __future__ import annotations

from sqlglot import exp, parse_one
from sqlmesh import macro

PASS_BATCHES = 64  # lake batches a pass takes at most: each pass's aggregate stays small (~47M raw links at Qwen scale)


@macro()
def new_batches(evaluator, job: exp.Expr) -> exp.Expr:
    """The committed lake batches of `job` (e.g. 'graphs') that `previous` does not hold yet, oldest
    first, at most PASS_BATCHES of them."""
    return parse_one(
        f"""select atlas, batch
            from (
              select atlas, batch from lake.ingest_batches where job = {job.sql(dialect="duckdb")}
              except
              select distinct atlas, batch from previous
            )
            order by atlas, batch
            limit {PASS_BATCHES}""",
        read="duckdb",
    )


@macro()
def next_pass(evaluator) -> exp.Expr:
    """This pass's number (`seq`): one more than the last pass in `previous`, 1 for the first."""
    return parse_one("select coalesce(max(seq), 0) + 1 as seq from previous", read="duckdb")
