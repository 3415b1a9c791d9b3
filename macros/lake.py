"""The lake boundary: the only engine-specific SQL of the project."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlparse

import pyarrow as pa
from sqlglot import exp, parse_one
from sqlmesh import macro

from circuitlake.lake import active_files


@macro()
def lake_scan(evaluator, table: exp.Expr) -> exp.Expr:
    """A read of Delta lake table `table` under the `lake_root` variable (an absolute path), by the
    gateway's `lake_format` variable:

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
    path = f"{evaluator.var('lake_root')}/{name}"
    lake_format = evaluator.var("lake_format", "delta_scan")
    if lake_format == "delta":
        return exp.table_(name, db=evaluator.var("lake_delta_schema", "lake_delta"))
    if lake_format == "parquet_files" and evaluator.runtime_stage != "loading":
        return _active_files_read(path).subquery()
    return exp.func("delta_scan", exp.Literal.string(path))


def _active_files_read(path: str) -> exp.Query:
    """select <every column, in schema order> from the table's active Parquet files: one relation over a
    glob naming exactly those files (`parquet.`<root>/{a,b,...}``), so Spark infers the schema and
    lists files once per reference instead of once per file (a Spark job each). Delta keeps partition
    values out of the files: each comes from a `case` over the file's name (`_metadata.file_name`).
    Files whose names repeat (another writer's naming) are read one relation per file instead. No row
    when the table has no file."""
    schema, files = _local_paths(*active_files(path))
    if not files:
        nulls = [exp.cast(exp.null(), _spark_type(f.type)).as_(f.name) for f in schema]
        return exp.select(*nulls).where(exp.false())
    names = [uri.rsplit("/", 1)[1] for uri, _ in files]
    if len(set(names)) < len(names):
        return _union_per_file(schema, files)
    root = os.path.commonprefix([uri for uri, _ in files]).rsplit("/", 1)[0]
    glob = f"{_glob_escape(root)}/{{{','.join(_glob_escape(uri[len(root) + 1 :]) for uri, _ in files)}}}"
    file_name = exp.Dot(this=exp.column("_metadata", table="f"), expression=exp.to_identifier("file_name"))
    columns = []
    for f in schema:
        if f.name in files[0][1]:
            ifs = [exp.If(this=exp.Literal.string(n), true=_literal(p[f.name])) for n, (_, p) in zip(names, files, strict=True)]
            value = exp.Case(this=file_name, ifs=ifs)
            columns.append(exp.cast(value, _spark_type(f.type)).as_(f.name))
        else:
            columns.append(exp.column(f.name, table="f"))
    return exp.select(*columns).from_(exp.ReadParquet(expressions=[exp.Literal.string(glob)]).as_("f"))


def _union_per_file(schema: pa.Schema, files: list[tuple[str, dict[str, str]]]) -> exp.Query:
    """select <every column> from parquet.`file` union all ..., partition values as literals."""
    parts = []
    for uri, partition in files:
        columns = [
            exp.cast(_literal(partition[f.name]), _spark_type(f.type)).as_(f.name) if f.name in partition else exp.column(f.name)
            for f in schema
        ]
        # DuckDB's read_parquet('uri'), which sqlglot writes for Spark as parquet.`uri`
        parts.append(exp.select(*columns).from_(exp.ReadParquet(expressions=[exp.Literal.string(_glob_escape(uri))]).as_("f")))
    union = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False)
    return union


def _local_paths(schema: pa.Schema, files: list[tuple[str, dict[str, str]]]) -> tuple[pa.Schema, list[tuple[str, dict[str, str]]]]:
    """Local files as plain paths (Spark reads a `file://` URI's %-escapes literally), others as URIs."""
    return schema, [(unquote(urlparse(uri).path) if uri.startswith("file://") else uri, p) for uri, p in files]


def _literal(value: str | None) -> exp.Expr:
    """A partition value as SQL (Delta writes a null partition value as null)."""
    return exp.null() if value is None else exp.Literal.string(value)


def _glob_escape(text: str) -> str:
    """`text` with Hadoop's glob characters escaped: matched as itself inside a glob pattern."""
    return "".join("\\" + c if c in "\\{}[]*?," else c for c in text)


def _spark_type(arrow: pa.DataType) -> exp.DataType:
    """The SQL type of a lake column's Arrow type."""
    if pa.types.is_list(arrow):
        return exp.DataType.build(f"array<{_spark_type(arrow.value_type).sql('spark')}>", dialect="spark")
    if pa.types.is_timestamp(arrow):
        return exp.DataType.build("timestamp")
    names = {pa.string(): "string", pa.bool_(): "boolean", pa.int16(): "smallint", pa.int32(): "int", pa.int64(): "bigint"}
    names |= {pa.float32(): "float", pa.float64(): "double"}
    return exp.DataType.build(names[arrow], dialect="spark")
