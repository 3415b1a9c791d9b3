"""Search indexes of the built atlases (run by `circuitlake build` after the models).

For each atlas whose label text changed since its index was built (a fingerprint over the text columns
of `neurons`), a new tantivy index is written beside the old one, recorded in `search.indexes`, and the
old one removed; an atlas whose labels did not change is not touched. When label embeddings
(`circuitlake embed`) moved too, `search.embeddings_<slug>` is rewritten with the vectors of the current
label texts as FLOAT[d] (inside DuckDB).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import tantivy

from circuitlake import duck, lake, registry, search
from circuitlake.progress import console
from circuitlake.settings import Warehouse

BATCH_ROWS = 100_000  # documents fetched from DuckDB at a time
WRITER_HEAP = 256_000_000  # bytes tantivy buffers before it writes a segment


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


def duckdb_stopwords() -> list[str]:
    """DuckDB `fts`'s English stop words (the list its BM25 indexes used), read from the extension."""
    scratch = duck.load(duckdb.connect(), "fts")
    try:
        scratch.execute("create table doc as select 1 as id, '' as text")
        scratch.execute("pragma create_fts_index('doc', 'id', 'text', stopwords = 'english')")
        return [w for (w,) in scratch.execute("select sw from fts_main_doc.stopwords order by sw").fetchall()]
    finally:
        scratch.close()


def index_docs(con: duckdb.DuckDBPyConnection, wh: Warehouse, atlas: str, fingerprint: str) -> int:
    """Write the atlas's full-text index for `fingerprint` (search.fts_folder), streaming its labeled units
    from DuckDB; returns the documents indexed. Written under a temporary name, then renamed."""
    folder = search.fts_folder(wh, atlas, fingerprint)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    stopwords = duckdb_stopwords()
    (partial / search.ANALYSIS_FILE).write_text(json.dumps({"stopwords": stopwords}))
    index = tantivy.Index(search.fts_schema(), path=str(partial))
    index.register_tokenizer(search.TOKENIZER, search.analyzer(stopwords))
    writer = index.writer(heap_size=WRITER_HEAP)
    rows = 0
    reader = con.execute(
        f"""select layer, neuron, {search.FOLD.format(search.LABEL_TEXT)} as text
            from {search.labeled_units("$1")}
            where {search.LABEL_TEXT} <> ''""",
        [atlas],
    ).to_arrow_reader(BATCH_ROWS)
    for batch in reader:
        for layer, neuron, text in zip(*(batch.column(c).to_pylist() for c in ("layer", "neuron", "text")), strict=True):
            writer.add_document(tantivy.Document(layer=layer, neuron=neuron, text=text))
        rows += batch.num_rows
    writer.commit()
    writer.wait_merging_threads()
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return rows


def _remove_other_indexes(con: duckdb.DuckDBPyConnection, wh: Warehouse, atlas: str, fts: str, semantic: str | None) -> None:
    """The atlas's index files other than the current ones (fingerprints `fts`, `semantic`), and the
    DuckDB `fts` tables of before."""
    current = {search.fts_folder(wh, atlas, fts)} | ({search.vector_file(wh, atlas, semantic)} if semantic else set())
    for other in (wh.root / search.SCHEMA).glob(f"{search.slug(atlas)}-*"):
        if other not in current:
            shutil.rmtree(other) if other.is_dir() else other.unlink()
    con.execute(f"drop schema if exists fts_{search.SCHEMA}_docs_{search.slug(atlas)} cascade")
    con.execute(f"drop table if exists {search.SCHEMA}.docs_{search.slug(atlas)}")


def embedding_model(con: duckdb.DuckDBPyConnection, atlas: str) -> tuple[str, int] | None:
    """(model, dimensions) of the atlas's latest embedding run, or None before the first."""
    row = con.execute("select model, dimensions from lake.label_embeddings where atlas = ? order by batch desc limit 1", [atlas]).fetchone()
    return (row[0], int(row[1])) if row else None


def publish_embeddings(con: duckdb.DuckDBPyConnection, wh: Warehouse, atlas: str, model: str, dimensions: int, fingerprint: str) -> int:
    """`search.embeddings_<slug>` from the current label texts' newest vectors, and the vector index over it
    for `fingerprint` (search.vector_file: written under a temporary name, then renamed); returns the vectors."""
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
    return write_vector_index(con, table, search.vector_file(wh, atlas, fingerprint), dimensions)


def write_vector_index(con: duckdb.DuckDBPyConnection, table: str, path: Path, dimensions: int) -> int:
    """A vector index (search.new_vector_index) over `table`(layer, neuron, embedding FLOAT[dimensions])
    at `path`: exact for few vectors, else IVF, trained first on a seeded sample of them; then every
    vector streamed from DuckDB in batches; written under a temporary name, then renamed. Returns the
    vectors indexed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    total = duck.scalar(con, f"select count(*) from {table}")
    index = search.new_vector_index(dimensions, total)
    if not index.is_trained:
        sample = search.cells(total) * search.TRAIN_PER_LIST
        drawn = con.execute(f"select embedding from {table} using sample reservoir({int(sample)} rows) repeatable (42)").to_arrow_table()
        flat = drawn.column("embedding").combine_chunks().values.to_numpy(zero_copy_only=False)
        index.train(search.unit_rows(flat.reshape(-1, dimensions)))
    for batch in con.execute(f"select layer, neuron, embedding from {table}").to_arrow_reader(BATCH_ROWS):
        flat = batch.column("embedding").values.to_numpy(zero_copy_only=False)
        keys = search.vector_key(batch.column("layer").to_numpy(), batch.column("neuron").to_numpy())
        index.add_with_ids(search.unit_rows(flat.reshape(batch.num_rows, dimensions)), keys)
    search.save_vector_index(index, path)
    return int(index.ntotal)


def on_disk(wh: Warehouse) -> bool:
    """Whether every atlas has its full-text index recorded, every recorded index is on disk and was
    built with today's settings (a build that moved no label re-indexes when one went missing or the
    settings changed)."""
    con = duck.connect(wh, read_only=True)
    try:
        rows = con.execute(f"select atlas, kind, fingerprint from {search.INDEXES}").fetchall()
    except duckdb.CatalogException:
        return False
    finally:
        con.close()
    if set(registry.atlas_names(wh)) != {atlas for atlas, kind, _ in rows if kind == "fts"}:
        return False
    settings = {"fts": search.FTS_SETTINGS, "semantic": search.VECTOR_SETTINGS}
    return all(
        f.endswith(f":{settings[kind]}") and (search.fts_folder if kind == "fts" else search.vector_file)(wh, atlas, f).exists()
        for atlas, kind, f in rows
    )


def refresh(wh: Warehouse) -> list[Built]:
    """Re-index the atlases whose label text (or, for semantic search, whose embeddings) changed since
    their index was built, or whose index file is missing; returns what was rebuilt. Idempotent: a second
    call rebuilds nothing."""
    con = duck.load(duck.connect(wh, read_only=False), "delta")  # (an index of before, DuckDB `fts` tables, drops without `fts`)
    built = []
    try:
        _ensure_schema(con)
        embeddings_version = lake.versions(wh, ("label_embeddings",))["label_embeddings"]
        for atlas in registry.atlas_names(wh):
            text = labels_fingerprint(con, atlas)
            fingerprint = f"{text}:{search.FTS_SETTINGS}"
            if _stored(con, atlas, "fts") != fingerprint or not search.fts_folder(wh, atlas, fingerprint).exists():
                with console.status(f"build: indexing {atlas}'s labels for search"):
                    rows = index_docs(con, wh, atlas, fingerprint)
                _record(con, atlas, "fts", fingerprint, rows)
                _remove_other_indexes(con, wh, atlas, fingerprint, _stored(con, atlas, "semantic"))
                built.append(Built(atlas, "fts", rows))
            chosen = embedding_model(con, atlas)
            vectors = f"{text}:{embeddings_version}:{search.VECTOR_SETTINGS}"
            if chosen and (_stored(con, atlas, "semantic") != vectors or not search.vector_file(wh, atlas, vectors).exists()):
                with console.status(f"build: publishing {atlas}'s label embeddings and their vector index"):
                    rows = publish_embeddings(con, wh, atlas, *chosen, vectors)
                _record(con, atlas, "semantic", vectors, rows, *chosen)
                _remove_other_indexes(con, wh, atlas, fingerprint, vectors)
                built.append(Built(atlas, "semantic", rows))
        con.execute("checkpoint")
    finally:
        con.close()
    for b in built:
        console.print(f"build: {b.atlas} {'full-text' if b.kind == 'fts' else 'semantic'} search index: {b.rows:,} neurons")
    return built
