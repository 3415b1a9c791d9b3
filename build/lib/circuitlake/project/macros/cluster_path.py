"""Reading Infomap paths ("3.12.7") in SQL, the same way in every model."""

from __future__ import annotations

from sqlglot import exp, parse_one
from sqlmesh import macro


@macro()
def path_part(evaluator, path: exp.Expr, n: exp.Expr) -> exp.Expr:
    """Component `n` (1-based) of a dot-separated Infomap path as INT; null when the path is shorter."""
    return parse_one(f"cast(nullif(split_part({path.sql('duckdb')}, '.', {n.sql('duckdb')}), '') as int)", read="duckdb")
