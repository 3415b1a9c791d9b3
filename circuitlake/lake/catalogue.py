"""The lake's table catalogue: every Delta table's name, Arrow schema (with column comments) and partitioning,
and the schema version stamped on each table."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

# 2: `retractions`; 3: pass autointerp_original; 4: `label_calls`; 5: `label_embeddings`; 6: atlas units
# (transcoder features), graph producers' counts and clerp labels (circuitlake/migrations.py)
SCHEMA_VERSION = "6"
SCHEMA_MARK = "circuitlake lake schema "  # stored in each table's Delta description (custom properties are refused)
_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class LakeTable:
    """A lake table: its Arrow schema and partition columns."""

    name: str
    schema: pa.Schema
    partition_by: tuple[str, ...] = ("atlas", "batch")


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(n, t) for n, t in fields])


_BATCH = (("atlas", pa.string()), ("batch", pa.string()))

TABLES: dict[str, LakeTable] = {
    t.name: t
    for t in [
        LakeTable(
            "atlases",
            _schema(
                ("atlas", pa.string()),
                ("model_id", pa.string()),
                ("num_layers", pa.int32()),
                ("neurons_per_layer", pa.int32()),  # units per layer: MLP neurons (d_ffn) or transcoder features
                ("universe", pa.string()),  # 'grid' (every neuron of the model) | 'observed'
                ("min_label_coverage", pa.float64()),  # null: coverage reported, not audited
                ("relp_min_count", pa.int32()),  # RelP edges publish at count >= this (research: 3)
                ("settings", pa.string()),  # JSON: label precedence, clustering settings
                ("registered_at", _TS),
                ("unit", pa.string()),  # what the atlas's units are: 'neuron' (MLP neurons) | 'transcoder' (transcoder features)
            ),
            partition_by=(),
        ),
        LakeTable(
            "graphs",
            _schema(
                *_BATCH,
                ("graph_id", pa.string()),  # sha256 of the decompressed file bytes
                ("graph_key", pa.int64()),  # first 8 bytes of graph_id: the compact key of the big tables
                ("source_path", pa.string()),
                ("slug", pa.string()),
                ("scan", pa.string()),
                ("prompt", pa.string()),
                ("prompt_tokens", pa.list_(pa.string())),
                ("corpus_index", pa.int64()),
                ("node_threshold", pa.float64()),
                ("metric_value", pa.float64()),
                ("target_position", pa.int32()),
                ("nodes_exceeded", pa.bool_()),
                ("node_count", pa.int32()),
                ("neuron_count", pa.int32()),
                ("link_count", pa.int32()),
                ("dangling_links", pa.int32()),  # links whose endpoint is not among the nodes (kept)
                ("ambiguous_links", pa.int32()),  # links naming an id two different nodes hold (kept, kind 'ambiguous')
                ("zero_weight_links", pa.int32()),  # links of weight 0 (dropped)
                ("error_nodes", pa.int32()),  # transcoder error nodes (kind 'error')
                ("generator", pa.string()),  # metadata.info.generator "name version" (Neuronpedia)
                ("transcoder_set", pa.string()),  # info.transcoder_set / source_set, or the transcoder_list
            ),
        ),
        LakeTable(
            "graph_nodes",
            _schema(
                *_BATCH,
                ("graph_key", pa.int64()),
                ("kind", pa.string()),  # neuron | transcoder | embedding | logit | error | other
                ("layer", pa.int16()),  # model layer; null for embedding/logit
                ("feature", pa.int64()),  # unit index in its layer (neuron, transcoder feature), token id (embedding/logit), -1 (error)
                ("position", pa.int32()),
                ("influence", pa.float64()),
                ("activation", pa.float64()),
                ("node_id", pa.string()),  # raw id, kept only for kind 'other'
                ("feature_type", pa.string()),  # raw feature_type, kept only for kind 'other'
                ("clerp", pa.string()),  # a unit node's display label (Neuronpedia), when it is more than the unit's key
            ),
        ),
        LakeTable(
            "graph_links",
            _schema(
                *_BATCH,
                ("graph_key", pa.int64()),
                ("src_kind", pa.string()),  # a graph_nodes kind, or 'ambiguous' (an id two nodes hold)
                ("src_layer", pa.int16()),
                ("src_feature", pa.int64()),
                ("src_pos", pa.int32()),
                ("tgt_kind", pa.string()),
                ("tgt_layer", pa.int16()),
                ("tgt_feature", pa.int64()),
                ("tgt_pos", pa.int32()),
                ("weight", pa.float64()),
            ),
        ),
        LakeTable(
            "label_precedence",
            _schema(
                ("atlas", pa.string()),
                ("column_name", pa.string()),  # neurons column: label | output_label | input_label | description
                ("rank", pa.int32()),  # 1 wins over 2 ...
                ("pass", pa.string()),  # output | input | autointerp | activation_pos | activation_neg
                ("field", pa.string()),  # label | short_label | description
                ("source", pa.string()),  # only this source; null: any source
            ),
            partition_by=(),
        ),
        LakeTable(
            "labels",
            _schema(
                *_BATCH,
                ("source", pa.string()),  # the unit of replacement (--source, default the file stem)
                ("pass", pa.string()),  # output | input | autointerp | autointerp_original | activation_pos | activation_neg
                ("layer", pa.int32()),
                ("neuron", pa.int32()),
                ("label", pa.string()),
                ("short_label", pa.string()),
                ("description", pa.string()),
                ("type", pa.string()),
                ("interpretability", pa.string()),
                ("confidence", pa.string()),
                ("labeler_model", pa.string()),
                ("max_activation", pa.float64()),
                ("num_exemplars", pa.int32()),
                ("output_norm", pa.float64()),
                ("source_file", pa.string()),
                ("record", pa.string()),  # line number or key inside the file
            ),
        ),
        LakeTable(
            "wiring",
            _schema(
                *_BATCH,
                ("source", pa.string()),  # cache:<folder> | weights:<checkpoint sha256 prefix>
                ("layer", pa.int32()),  # the neuron whose list this is (its layer file)
                ("neuron", pa.int32()),
                ("direction", pa.string()),  # upstream (other -> neuron) | downstream (neuron -> other)
                ("polarity", pa.string()),  # the list: excitatory | inhibitory
                ("rank", pa.int32()),  # position in the list, 1 = strongest
                ("other_layer", pa.int32()),
                ("other_neuron", pa.int32()),
                ("c_up", pa.float64()),  # W_up[t] . d_s
                ("c_gate", pa.float64()),  # W_gate[t] . d_s
                ("effective_strength", pa.float64()),  # +-(|c_up| + |c_gate|), sign = polarity
                ("predicted_polarity", pa.string()),
            ),
        ),
        LakeTable(
            "projections",
            _schema(
                *_BATCH,
                ("source", pa.string()),
                ("layer", pa.int32()),
                ("neuron", pa.int32()),
                ("kind", pa.string()),  # promotes | suppresses | activates
                ("rank", pa.int32()),
                ("token_id", pa.int64()),
                ("token", pa.string()),
                ("weight", pa.float64()),  # (W_U d_s)[token]
            ),
        ),
        LakeTable(
            "neuron_weights",
            _schema(
                *_BATCH,
                ("source", pa.string()),
                ("layer", pa.int32()),
                ("neuron", pa.int32()),
                ("output_norm", pa.float64()),  # ||d_s||, the norm of the down-projection column
            ),
        ),
        LakeTable(
            "cluster_runs",
            _schema(
                *_BATCH,
                ("settings", pa.string()),  # JSON of the cluster settings used
                ("method", pa.string()),  # edges clustered: relp | weight_graph
                ("edges_hash", pa.string()),  # sha256 of the ordered (src, tgt, weight) input: the edges snapshot
                ("edges", pa.int64()),  # links given to Infomap
                ("neurons", pa.int64()),  # nodes given to Infomap
                ("graphs_hash", pa.string()),  # metadata.graphs_hash of the edges read: stale when it moves on
                ("infomap_version", pa.string()),
                ("codelength", pa.float64()),
                ("top_modules", pa.int64()),
                ("levels", pa.int64()),
                ("seconds", pa.float64()),
            ),
            partition_by=("atlas",),
        ),
        LakeTable(
            "cluster_assignments",
            _schema(
                *_BATCH,
                ("layer", pa.int32()),
                ("neuron", pa.int32()),
                ("cluster_path", pa.string()),  # Infomap path "3.12.7"; the last component is the leaf's rank
                ("flow", pa.float64()),
            ),
        ),
        LakeTable(
            "ingest_batches",
            _schema(
                *_BATCH,
                ("job", pa.string()),  # graphs | labels | wiring
                ("source", pa.string()),  # the unit of replacement for labels; null otherwise
                ("started_at", _TS),
                ("finished_at", _TS),
                ("version", pa.string()),  # circuitlake version that wrote the batch
                ("inputs", pa.list_(pa.string())),  # paths read
                ("content_hash", pa.string()),  # sha256 over the sorted record hashes landed
                ("landed", pa.int64()),
                ("skipped", pa.int64()),  # already in the lake
                ("rejected", pa.int64()),
                ("rows", pa.string()),  # JSON {table: rows written}
            ),
            partition_by=("atlas",),
        ),
        LakeTable(
            "label_calls",
            _schema(
                *_BATCH,
                ("run", pa.string()),  # the labeling run (its labels' source)
                ("pass", pa.string()),  # output | input
                ("layer", pa.int32()),
                ("neuron", pa.int32()),
                ("model", pa.string()),
                ("template_hash", pa.string()),  # sha256 of the prompt template file
                ("attempt", pa.int32()),  # 1, 2, ... for one neuron and pass
                ("outcome", pa.string()),  # ok | invalid | rate_limited | server_error | timeout | refused | error
                ("tokens_in", pa.int64()),
                ("tokens_out", pa.int64()),
                ("latency_ms", pa.float64()),
                ("error", pa.string()),  # what went wrong (never a secret)
                ("reply", pa.string()),  # the raw reply of an answer that did not validate
                ("called_at", _TS),
            ),
        ),
        LakeTable(
            "label_embeddings",
            _schema(
                *_BATCH,
                ("run", pa.string()),  # the embedding run (`circuitlake embed --run`)
                ("layer", pa.int32()),
                ("neuron", pa.int32()),
                ("model", pa.string()),  # embeddings model asked
                ("dimensions", pa.int32()),  # vector length
                ("text_sha", pa.string()),  # sha256 of the label text embedded (circuitlake/search.py LABEL_TEXT)
                ("embedding", pa.list_(pa.float32())),
                ("embedded_at", _TS),
            ),
        ),
        LakeTable(
            "retractions",
            _schema(
                ("atlas", pa.string()),
                ("retraction", pa.string()),  # id, sortable by time ('retract-<UTC time>-<random>')
                ("what", pa.string()),  # the request: batch ... | source NAME | files ... | all
                ("batches", pa.list_(pa.string())),  # the batches taken out
                ("jobs", pa.list_(pa.string())),  # their jobs: graphs | labels | wiring | cluster
                ("relanded", pa.list_(pa.string())),  # new batches holding the other graphs of retracted files' batches
                ("retracted_at", _TS),
            ),
            partition_by=("atlas",),
        ),
        LakeTable(
            "rejects",
            _schema(
                *_BATCH,
                ("job", pa.string()),
                ("file", pa.string()),
                ("record", pa.string()),  # line, offset or JSON path inside the file
                ("reason", pa.string()),
                ("reject_key", pa.string()),  # sha256(content hash, record, reason): dedups re-runs
                ("rejected_at", _TS),
            ),
            partition_by=("atlas",),
        ),
    ]
}


def row_schema(name: str) -> pa.Schema:
    """A table's schema without `atlas` and `batch`, which the batch writer adds."""
    schema = TABLES[name].schema
    return pa.schema([f for f in schema if f.name not in ("atlas", "batch")])


INGESTED = tuple(sorted(set(TABLES) - {"cluster_runs", "cluster_assignments"}))  # what ingest jobs write
