"""Where an atlas's search indexes live in the warehouse, how they rank, and the SQL that shows the hits.

Each atlas has its own indexes, so a build re-indexes only the atlases whose labels changed: a tantivy
full-text index in `<warehouse>/search/<slug>-<fingerprint>/` (one document per labeled unit: the text
fields of `neurons`, or of its labels for a unit outside the universe), and for semantic search
`search.embeddings_<slug>` (one FLOAT[d] vector per neuron whose current label text was embedded) with a
faiss index over it in `<warehouse>/search/<slug>-<fingerprint>.faiss` (cosine: exact for up to 100K
vectors, else IVF). `search.indexes`
(DuckDB) records what each was built from; a file's name follows from that record, so a reader never
sees a half-written index.

Full-text ranking is BM25 (k1 1.2, b 0.75) over the concatenated label text, any query word: the text is
folded as DuckDB's `fts` folds it (lower(strip_accents(text)) in DuckDB itself), split into runs of
[a-z0-9], stripped of DuckDB `fts`'s 571 English stop words, and stemmed with Snowball's English stemmer.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tantivy

if TYPE_CHECKING:
    import faiss

from circuitlake import native
from circuitlake.settings import Warehouse

SCHEMA = "search"
INDEXES = f"{SCHEMA}.indexes"
# the text a neuron is found by, in `neurons` columns; embeddings are keyed by its sha256
LABEL_TEXT = "concat_ws(' | ', label, output_label, input_label, description)"
TEXT_COLUMNS = ("label", "output_label", "input_label", "description")


def labeled_units(atlas_param: str, only: str | None = None) -> str:
    """Every unit of an atlas that search can find, as a subquery: its `neurons` row, and for a unit that
    is labeled but outside the atlas's universe (universe 'observed': it appears in no graph or wiring
    yet) its `stg.neuron_labels` row, with no cluster. `atlas_param` is the atlas's SQL parameter; `only`,
    a relation with layer and neuron columns, keeps just those units (read first: a page's few hits
    never scan every label of the atlas)."""

    def keep(alias: str) -> str:
        return f"semi join {only} as k on k.layer = {alias}.layer and k.neuron = {alias}.neuron" if only else ""

    return f"""(
  select feature_id, layer, neuron, label, output_label, input_label, description, cluster_path, top_cluster
  from neurons as u
  {keep("u")}
  where atlas = {atlas_param}
  union all
  select cast(l.layer as bigint) * a.neurons_per_layer + l.neuron as feature_id, l.layer, l.neuron,
         l.label, l.output_label, l.input_label, l.description, null as cluster_path, null as top_cluster
  from stg.neuron_labels as l
  join lake.atlases as a
    on l.atlas = a.atlas
  {keep("l")}
  where l.atlas = {atlas_param}
    and not exists (select 1 from neurons as n where n.atlas = l.atlas and n.layer = l.layer and n.neuron = l.neuron)
)"""


def slug(atlas: str) -> str:
    """A table-name-safe, collision-free name for an atlas ('qwen3-32b' -> 'qwen3_32b_1f2e3d')."""
    return f"{re.sub(r'[^a-z0-9]', '_', atlas)}_{hashlib.sha256(atlas.encode()).hexdigest()[:6]}"


FTS_SETTINGS = "tantivy/bm25/[a-z0-9]+/duckdb-english-stopwords/snowball-english"  # part of an index's fingerprint
TOKENS = r"[a-z0-9]+"  # what a word is, in folded text: digits stay searchable (years, "python 3")
FOLD = "lower(strip_accents({}))"  # DuckDB SQL: how text is folded before it is split into words
TOKENIZER = "circuitlake"
ANALYSIS_FILE = "analysis.json"  # beside the index: the stop words it was built with


def fts_folder(wh: Warehouse, atlas: str, fingerprint: str) -> Path:
    """The folder of the atlas's full-text index built from `fingerprint` (search.indexes)."""
    return wh.root / SCHEMA / f"{slug(atlas)}-{hashlib.sha256(fingerprint.encode()).hexdigest()[:16]}"


def vector_file(wh: Warehouse, atlas: str, fingerprint: str) -> Path:
    """The file of the atlas's vector index over its label embeddings built from `fingerprint`."""
    return fts_folder(wh, atlas, fingerprint).with_suffix(".faiss")


# the vector index (faiss, inner product of unit vectors = cosine); recall@20 against brute force and
# build times are measured in bench/RESULTS.md ("Label search")
EXACT_MAX = 100_000  # up to this many vectors: an exact (flat) index, every query compares every vector
MAX_LISTS = 4096  # above it: IVF with min(4 sqrt(n), MAX_LISTS) k-means cells ...
PROBES = 16  # ... of which a query scans the PROBES nearest
TRAIN_PER_LIST = 64  # k-means trains on this many sampled vectors per cell
VECTOR_SETTINGS = f"faiss/ip/flat<={EXACT_MAX}/ivf{MAX_LISTS}x{PROBES}"  # part of an index's fingerprint


def vector_key(layer, neuron):
    """A neuron's id in the vector index (layer in the high 32 bits); numpy arrays or ints."""
    return (np.asarray(layer, dtype=np.int64) << np.int64(32)) | np.asarray(neuron, dtype=np.int64)


def cells(vectors: int) -> int:
    """The IVF index's k-means cells for `vectors` vectors (0: an exact index)."""
    return 0 if vectors <= EXACT_MAX else min(MAX_LISTS, int(4 * math.sqrt(vectors)))


def new_vector_index(dimensions: int, vectors: int) -> faiss.Index:
    """An empty index for `vectors` unit vectors: exact (flat) when few, else IVF (train it first, on
    `cells(vectors) * TRAIN_PER_LIST` of them). faiss is imported here, when first needed: native
    libraries loaded before deltalake's have crashed its next read (usearch did, found by the explorer bench),
    and its load order with infomap matters (circuitlake.native)."""
    faiss = native.faiss()

    if not cells(vectors):
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dimensions))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimensions), dimensions, cells(vectors), faiss.METRIC_INNER_PRODUCT)
    index.nprobe = PROBES
    return index


def save_vector_index(index: faiss.Index, path: Path) -> None:
    """Write the index under a temporary name, then rename it (a reader never maps half a file)."""
    partial = path.with_name(path.name + ".partial")
    native.faiss().write_index(index, str(partial))
    partial.rename(path)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Float32 rows scaled to length 1 (so inner product is cosine similarity); zero rows stay zero."""
    rows = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1)


@lru_cache(maxsize=16)
def _vectors(path: Path) -> faiss.Index:
    """An index file mapped read-only once per process (its name changes with its content)."""
    faiss = native.faiss()
    index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    if isinstance(index, faiss.IndexIVF):
        index.nprobe = PROBES
    return index


def nearest(path: Path, vector: list[float], limit: int) -> list[tuple[int, int, float]]:
    """(layer, neuron, cosine similarity) of the `limit` label embeddings nearest to `vector` (exact up
    to EXACT_MAX vectors, else IVF: approximate, recall in bench/RESULTS.md)."""
    index = _vectors(path)
    if limit <= 0 or index.ntotal == 0:
        return []
    scores, ids = index.search(unit_rows(np.asarray([vector])), min(limit, index.ntotal))
    return [(int(k) >> 32, int(k) & 0xFFFFFFFF, float(d)) for k, d in zip(ids[0], scores[0], strict=True) if k >= 0]


def analyzer(stopwords: list[str]) -> tantivy.TextAnalyzer:
    """Folded text -> index terms: [a-z0-9] runs, stop words dropped, Snowball English stems."""
    builder = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(TOKENS))
    return builder.filter(tantivy.Filter.custom_stopword(stopwords)).filter(tantivy.Filter.stemmer("english")).build()


def fts_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("layer", stored=True, indexed=False)
    builder.add_integer_field("neuron", stored=True, indexed=False)
    builder.add_text_field("text", tokenizer_name=TOKENIZER, index_option="freq")  # BM25 needs term frequencies only
    return builder.build()


@lru_cache(maxsize=16)
def _opened(folder: Path) -> tuple[tantivy.Index, tantivy.TextAnalyzer]:
    """An index folder opened once per process (its name changes with its content)."""
    stopwords = json.loads((folder / ANALYSIS_FILE).read_text())["stopwords"]
    index = tantivy.Index.open(str(folder))
    text_analyzer = analyzer(stopwords)
    index.register_tokenizer(TOKENIZER, text_analyzer)
    return index, text_analyzer


def bm25(folder: Path, folded_text: str, limit: int) -> list[tuple[int, int, float]]:
    """(layer, neuron, BM25 score) of the `limit` best documents matching any word of the folded query
    (ties at the limit: tantivy's document order)."""
    index, text_analyzer = _opened(folder)
    words = text_analyzer.analyze(folded_text)
    if not words or limit <= 0:
        return []
    schema = index.schema
    query = tantivy.Query.boolean_query([(tantivy.Occur.Should, tantivy.Query.term_query(schema, "text", w)) for w in words])
    searcher = index.searcher()
    found = [(searcher.doc(address), score) for score, address in searcher.search(query, limit).hits]
    # DuckDB fts's BM25 (the index of before) takes log10 in its idf, tantivy ln: scores keep their scale
    return [(doc["layer"][0], doc["neuron"][0], score / math.log(10)) for doc, score in found]


def embeddings_table(atlas: str) -> str:
    return f"{SCHEMA}.embeddings_{slug(atlas)}"


def _ranked(ranked: str) -> str:
    """A `ranked(layer, neuron, score)` CTE joined to each neuron's row; parameter $3 is the atlas."""
    return f"""
with ranked as ({ranked}
)
select r.layer, r.neuron, round(r.score, 4) as score, n.label, n.output_label, n.input_label, n.cluster_path, n.top_cluster
from ranked as r
join {labeled_units("$3", only="ranked")} as n
  on n.layer = r.layer and n.neuron = r.neuron
order by r.score desc, r.layer, r.neuron"""


def hits_sql() -> str:
    """Parameters ([layer, neuron, score] lists, limit, atlas): hits (`bm25`, `nearest`) joined to their
    neuron's row for the current cluster, best first."""
    return _ranked("""
  select h[1]::int as layer, h[2]::int as neuron, h[3] as score
  from (select unnest($1::double[][]) as h)
  limit $2""")
