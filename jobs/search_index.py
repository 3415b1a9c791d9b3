"""Search indexes of the built atlases (run by `circuitlake build` after the models).

For each atlas whose label text changed since its index was built (a fingerprint over the text columns
of `neurons`), `search.docs_<slug>` is rewritten and BM25-indexed with DuckDB's `fts` extension; an
atlas whose labels did not change is not touched. When label embeddings (`circuitlake embed`) moved
too, `search.embeddings_<slug>` is rewritten with the vectors of the current label texts as FLOAT[d].
Everything runs inside DuckDB (no table passes through Python).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from circuitlake import duck, lake, registry, search
from circuitlake.progress import console
from circuitlake.settings import Warehouse

STOPWORDS = "english"
STEMMER = "porter"
IGNORE = r"(\.|[^a-z0-9])+"  # what separates words: digits stay searchable (years, "python 3"), unlike fts's default
FTS_SETTINGS = f"{STEMMER}/{STOPWORDS}/{IGNORE}"  # part of the index's fingerprint: new settings re-index


@dataclass(frozen=True)
class Built:
    atlas: str
    kind: str  # fts | semantic
    rows: int


def _ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {search.SCHEMA}")
    con.execute(
        f"""create table if not exists {search.INDEXES} (
              atlas text, kind text, fingerprint text, rows bigint, model text, dimensions int, built_at timestamptz,
              primary key (atlas, kind))"""
    )


def _stored(con: duckdb.DuckDBPyConnection, atlas: str, kind: str) -> str | None:
    row = con.execute(f"select fingerprint from {search.INDEXES} where atlas = ? and kind = ?", [atlas, kind]).fetchone()
    return row[0] if row else None


def _record(con: duckdb.DuckDBPyConnection, atlas: str, kind: str, fingerprint: str, rows: int, model=None, dimensions=None) -> None:
    con.execute(
        f"insert or replace into {search.INDEXES} values (?, ?, ?, ?, ?, ?, current_timestamp)",
        [atlas, kind, fingerprint, rows, model, dimensions],
    )


def labels_fingerprint(con: duckdb.DuckDBPyConnection, atlas: str) -> str:
    """Changes whenever any neuron's label text changes (count and an order-free hash of the text columns)."""
    columns = ", ".join(search.TEXT_COLUMNS)
    return duck.scalar(
        con, f"select count(*) || ':' || coalesce(sum(hash(layer, neuron, {columns})), 0) from {search.labeled_units('$1')}", [atlas]
    )


def index_docs(con: duckdb.DuckDBPyConnection, atlas: str) -> int:
    table = search.docs_table(atlas)
    columns = ", ".join(search.TEXT_COLUMNS)
    con.execute(
        f"""create or replace table {table} as
            select feature_id, layer, neuron, {columns}
            from {search.labeled_units("$1")}
            where {search.LABEL_TEXT} <> ''
            order by feature_id""",
        [atlas],
    )
    quoted = ", ".join(f"'{c}'" for c in search.TEXT_COLUMNS)
    con.execute(
        f"pragma create_fts_index('{table}', 'feature_id', {quoted}, stemmer = '{STEMMER}', stopwords = '{STOPWORDS}', "
        f"ignore = '{IGNORE}', overwrite = 1)"
    )
    return duck.scalar(con, f"select count(*) from {table}")


def embedding_model(con: duckdb.DuckDBPyConnection, atlas: str) -> tuple[str, int] | None:
    """(model, dimensions) of the atlas's latest embedding run, or None before the first."""
    row = con.execute("select model, dimensions from lake.label_embeddings where atlas = ? order by batch desc limit 1", [atlas]).fetchone()
    return (row[0], int(row[1])) if row else None


def publish_embeddings(con: duckdb.DuckDBPyConnection, atlas: str, model: str, dimensions: int) -> int:
    table = search.embeddings_table(atlas)
    con.execute(
        f"""create or replace table {table} as
            with current_text as (
              select layer, neuron, sha256({search.LABEL_TEXT}) as text_sha
              from {search.labeled_units("$1")}
              where {search.LABEL_TEXT} <> ''
            ),
            vectors as (
              -- a label text embedded twice (two runs): the newest vector wins
              select layer, neuron, text_sha, embedding
              from lake.label_embeddings
              where atlas = $1 and model = $2 and dimensions = $3
              qualify row_number() over (partition by layer, neuron, text_sha order by batch desc) = 1
            )
            select c.layer, c.neuron, cast(v.embedding as float[{int(dimensions)}]) as embedding
            from current_text as c
            join vectors as v
              on c.layer = v.layer and c.neuron = v.neuron and c.text_sha = v.text_sha
            order by c.layer, c.neuron""",
        [atlas, model, dimensions],
    )
    return duck.scalar(con, f"select count(*) from {table}")


def refresh(wh: Warehouse) -> list[Built]:
    """Re-index the atlases whose label text (or, for semantic search, whose embeddings) changed since
    their index was built; returns what was rebuilt. Idempotent: a second call rebuilds nothing."""
    con = duck.load(duck.connect(wh, read_only=False), "delta", "fts")
    built = []
    try:
        _ensure_schema(con)
        embeddings_version = lake.versions(wh, ("label_embeddings",))["label_embeddings"]
        for atlas in (a.name for a in registry.all_atlases(wh)):
            text = labels_fingerprint(con, atlas)
            if _stored(con, atlas, "fts") != f"{text}:{FTS_SETTINGS}":
                with console.status(f"build: indexing {atlas}'s labels for search"):
                    rows = index_docs(con, atlas)
                _record(con, atlas, "fts", f"{text}:{FTS_SETTINGS}", rows)
                built.append(Built(atlas, "fts", rows))
            chosen = embedding_model(con, atlas)
            if chosen and _stored(con, atlas, "semantic") != f"{text}:{embeddings_version}":
                with console.status(f"build: publishing {atlas}'s label embeddings"):
                    rows = publish_embeddings(con, atlas, *chosen)
                _record(con, atlas, "semantic", f"{text}:{embeddings_version}", rows, *chosen)
                built.append(Built(atlas, "semantic", rows))
        con.execute("checkpoint")
    finally:
        con.close()
    for b in built:
        console.print(f"build: {b.atlas} {'full-text' if b.kind == 'fts' else 'semantic'} search index: {b.rows:,} neurons")
    return built
