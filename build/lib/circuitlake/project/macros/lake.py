"""The lake boundary: the only engine-specific SQL of the project."""

from __future__ import annotations

from sqlglot import exp, parse_one
from sqlmesh import macro


@macro()
def lake_scan(evaluator, table: exp.Expr) -> exp.Expr:
    """A read of Delta lake table `table` under the `lake_root` variable (an absolute path).

    DuckDB reads it with the delta extension's `delta_scan`; Spark/Databricks with `delta.`path``.
    """
    name = table.name if isinstance(table, (exp.Column, exp.Identifier, exp.Literal)) else str(table)
    path = f"{evaluator.var('lake_root')}/{name}"
    if evaluator.dialect in ("spark", "databricks"):
        return parse_one(f"delta.`{path}`", read="spark")
    return exp.func("delta_scan", exp.Literal.string(path))
