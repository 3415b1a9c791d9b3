"""The lake boundary: the only engine-specific SQL of the project."""

from __future__ import annotations

from pathlib import Path

from sqlglot import exp, parse_one
from sqlmesh import macro

from circuitlake.lake.parquet_files import parquet_files_read
from circuitlake.settings import lake_of


@macro()
def lake_scan(evaluator, table: exp.Expr) -> exp.Expr:
    """A read of Delta lake table `table` of the warehouse's lake (absolute path), by the gateway's
    `lake_format` variable:

    * `delta_scan` (default, DuckDB): the delta extension's `delta_scan('path')`;
    * `delta` (Spark with delta-spark, Databricks): the metastore table `<lake_delta_schema>.<table>`
      registered over the lake path (`create table lake_delta.graph_links using delta location
      '<lake>/graph_links'`, README "Spark"), read at query time like `delta_scan`;
    * `parquet_files` (Spark without delta-spark): the table's active Parquet files, listed from the
      Delta log when a view over it is created, with the partition values put back. The view sees the
      files current then: `circuitlake build` re-creates the lake views whose tables moved. While
      SQLMesh loads the project (in forked processes, where deltalake cannot run) it renders the
      `delta_scan` form.
    """
    return _scan(evaluator, table)


@macro()
def committed_rows(evaluator, table: exp.Expr) -> exp.Expr:
    """The rows of lake table `table` whose batch is committed (has its `lake.ingest_batches` marker):
    what an interrupted or retracted batch left behind is never read."""
    source = _scan(evaluator, table).sql(dialect="duckdb")
    return parse_one(
        f"""(
          select t.*
          from {source} as t
          semi join lake.ingest_batches as b
            on t.atlas = b.atlas and t.batch = b.batch
        )""",
        read="duckdb",
    )


@macro()
def newest_wiring_layers(evaluator, table: exp.Expr) -> exp.Expr:
    """The rows of wiring lake table `table` (wiring, projections, neuron_weights) from committed
    batches of the current wiring source (`lake.wiring_batches`), each layer from its newest batch
    only: a layer landed twice under the same source (a newer file) is replaced, not doubled."""
    source = _scan(evaluator, table).sql(dialect="duckdb")
    return parse_one(
        f"""(
          with committed as (
            select t.*
            from {source} as t
            semi join lake.wiring_batches as b
              on t.atlas = b.atlas and t.batch = b.batch
          ),
          newest as (
            select atlas, layer, max(batch) as batch
            from committed
            group by atlas, layer
          )
          select c.*
          from committed as c
          semi join newest as n
            on c.atlas = n.atlas and c.layer = n.layer and c.batch = n.batch
        )""",
        read="duckdb",
    )


def _scan(evaluator, table: exp.Expr) -> exp.Expr:
    """`lake_scan`'s read (macros share this plain function rather than call each other)."""
    name = table.name if isinstance(table, (exp.Column, exp.Identifier, exp.Literal)) else str(table)
    lake_format = evaluator.var("lake_format", "delta_scan")
    if lake_format == "delta":
        return exp.table_(name, db=evaluator.var("lake_delta_schema", "lake_delta"))
    path = f"{_lake(evaluator)}/{name}"
    if lake_format == "parquet_files" and evaluator.runtime_stage != "loading":
        return parquet_files_read(path).subquery()
    return exp.func("delta_scan", exp.Literal.string(path))


def _lake(evaluator) -> str:
    """The lake of the warehouse the model is evaluated in, asked of the engine: that of the folder
    holding the DuckDB database file, or of the warehouse Spark's `spark.circuitlake.warehouse` conf names.
    While SQLMesh loads the project, or renders without an engine (`sqlmesh render`), the path is `lake`,
    relative to the warehouse: a loaded project is then the same for every warehouse, and SQLMesh's model
    cache serves them all (a new warehouse's first load 2.1 -> 0.5 s)."""
    adapter = evaluator.locals.get("engine_adapter")
    if evaluator.runtime_stage == "loading" or adapter is None:
        return "lake"
    if adapter.dialect == "spark":
        root = adapter.spark.conf.get("spark.circuitlake.warehouse")
    else:
        root = Path(adapter.fetchone("select path from duckdb_databases() where database_name = current_database()")[0]).parent
    return str(lake_of(root))
