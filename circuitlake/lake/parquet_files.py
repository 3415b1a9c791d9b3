"""A Delta table read as plain Parquet, for Spark without delta-spark (the `parquet_files` lake format of
macros/lake.py): a SQL relation over exactly the table's active files."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlparse

import pyarrow as pa
from sqlglot import exp

from circuitlake.lake.io import active_files


def parquet_files_read(path: str) -> exp.Query:
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
    return exp.union(*parts, distinct=False) if len(parts) > 1 else parts[0]


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
