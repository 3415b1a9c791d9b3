"""Where an atlas's search indexes live in the warehouse, and the SQL that ranks with them.

Each atlas has its own tables in schema `search`, so a build re-indexes only the atlases whose labels
changed: `search.docs_<slug>` (one row per labeled unit, the text fields of `neurons`, or of its labels for a
unit outside the universe) with a DuckDB
`fts` BM25 index over them, and `search.embeddings_<slug>` (one FLOAT[d] vector per neuron whose current
label text was embedded). `search.indexes` records what each was built from.
"""

from __future__ import annotations

import hashlib
import re

SCHEMA = "search"
INDEXES = f"{SCHEMA}.indexes"
# the text a neuron is found by, in `neurons` columns; embeddings are keyed by its sha256
LABEL_TEXT = "concat_ws(' | ', label, output_label, input_label, description)"
TEXT_COLUMNS = ("label", "output_label", "input_label", "description")


def labeled_units(atlas_param: str) -> str:
    """Every unit of an atlas that search can find, as a subquery: its `neurons` row, and for a unit that
    is labeled but outside the atlas's universe (universe 'observed': it appears in no graph or wiring
    yet) its `stg.neuron_labels` row, with no cluster. `atlas_param` is the atlas's SQL parameter."""
    return f"""(
  select feature_id, layer, neuron, label, output_label, input_label, description, cluster_path, top_cluster
  from neurons
  where atlas = {atlas_param}
  union all
  select cast(l.layer as bigint) * a.neurons_per_layer + l.neuron as feature_id, l.layer, l.neuron,
         l.label, l.output_label, l.input_label, l.description, null as cluster_path, null as top_cluster
  from stg.neuron_labels as l
  join lake.atlases as a
    on l.atlas = a.atlas
  where l.atlas = {atlas_param}
    and not exists (select 1 from neurons as n where n.atlas = l.atlas and n.layer = l.layer and n.neuron = l.neuron)
)"""


def slug(atlas: str) -> str:
    """A table-name-safe, collision-free name for an atlas ('qwen3-32b' -> 'qwen3_32b_1f2e3d')."""
    return f"{re.sub(r'[^a-z0-9]', '_', atlas)}_{hashlib.sha256(atlas.encode()).hexdigest()[:6]}"


def docs_table(atlas: str) -> str:
    return f"{SCHEMA}.docs_{slug(atlas)}"


def fts_schema(atlas: str) -> str:
    """The schema DuckDB's `PRAGMA create_fts_index` makes for the docs table (holds `match_bm25`)."""
    return f"fts_{SCHEMA}_docs_{slug(atlas)}"


def embeddings_table(atlas: str) -> str:
    return f"{SCHEMA}.embeddings_{slug(atlas)}"


def _ranked(ranked: str) -> str:
    """A `ranked(layer, neuron, score)` CTE joined to each neuron's row; parameter $3 is the atlas."""
    return f"""
with ranked as ({ranked}
)
select r.layer, r.neuron, round(r.score, 4) as score, n.label, n.output_label, n.input_label, n.cluster_path, n.top_cluster
from ranked as r
join {labeled_units("$3")} as n
  on n.layer = r.layer and n.neuron = r.neuron
order by r.score desc, r.layer, r.neuron"""


def bm25_sql(atlas: str) -> str:
    """Parameters (query text, limit, atlas): the best BM25 matches (any query term; porter stems,
    English stop words, accents and case folded), joined to their neuron's row for the current cluster."""
    return _ranked(f"""
  select layer, neuron, score
  from (select layer, neuron, {fts_schema(atlas)}.match_bm25(feature_id, $1) as score from {docs_table(atlas)})
  where score is not null
  order by score desc, layer, neuron
  limit $2""")


def cosine_sql(atlas: str, dimensions: int) -> str:
    """Parameters (query vector, limit, atlas): neurons ranked by cosine similarity of their label
    embedding to the query's (brute force over the FLOAT[d] column, see bench/RESULTS.md)."""
    return _ranked(f"""
  select layer, neuron, array_cosine_similarity(embedding, cast($1 as float[{int(dimensions)}])) as score
  from {embeddings_table(atlas)}
  order by score desc, layer, neuron
  limit $2""")
