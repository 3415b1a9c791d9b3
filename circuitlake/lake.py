"""The storage boundary: every read and write of the Delta lake goes through here.

Tables live under `<warehouse>/lake/<table>`. Ingest jobs append one Delta commit per table per
batch and write the batch's `ingest_batches` row last: a batch is *committed* once that row exists.
Readers (SQLMesh models, idempotency checks) only trust committed batches, and `discard_uncommitted`
removes what an interrupted run left behind, so the lake is always consistent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake
from deltalake.schema import Field as DeltaField

from circuitlake.errors import UserError
from circuitlake.settings import Warehouse

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


def _path(wh: Warehouse, name: str) -> str:
    return str(wh.table(name))


class LakeOutdated(UserError):
    """The lake was written by an older schema version: `circuitlake migrate` first."""


def ensure(wh: Warehouse) -> None:
    """Create every missing lake table, empty, stamped with the lake schema version. Idempotent.
    Refuses (LakeOutdated, UserError) a lake of another schema version: nothing is created in it."""
    found = lake_version(wh)
    if found is not None and found != SCHEMA_VERSION:
        if int(found) < int(SCHEMA_VERSION):
            raise LakeOutdated(
                f"the lake at {wh.lake} has schema version {found}; this circuitlake writes {SCHEMA_VERSION}: "
                "run `circuitlake migrate` (after a backup of the lake folder, if you want one)"
            )
        raise UserError(
            f"the lake at {wh.lake} has schema version {found}, newer than this circuitlake's {SCHEMA_VERSION}: upgrade circuitlake"
        )
    create_missing(wh)


def create_missing(wh: Warehouse) -> None:
    """Create the lake tables that do not exist yet, stamped with the current schema version."""
    for t in TABLES.values():
        path = wh.table(t.name)
        if DeltaTable.is_deltatable(str(path)):
            continue
        path.mkdir(parents=True, exist_ok=True)
        DeltaTable.create(
            str(path),
            t.schema,
            partition_by=list(t.partition_by) or None,
            name=t.name,
            description=f"{SCHEMA_MARK}{SCHEMA_VERSION}",
            mode="ignore",
        )


def add_missing_columns(wh: Warehouse, name: str) -> list[str]:
    """Add the columns of the table's current schema that its Delta table lacks (null in every
    existing row), as one metadata commit; returns their names. Idempotent: a migration step."""
    table = DeltaTable(_path(wh, name))
    have = set(pa.schema(table.schema().to_arrow()).names)
    missing = [f for f in TABLES[name].schema if f.name not in have]
    if missing:
        table.alter.add_columns([DeltaField.from_arrow(f) for f in missing])
    return [f.name for f in missing]


def schema_version(wh: Warehouse, name: str) -> str | None:
    """The lake schema version a table is stamped with (None: no such table)."""
    if not DeltaTable.is_deltatable(_path(wh, name)):
        return None
    description = DeltaTable(_path(wh, name)).metadata().description or ""
    return description.removeprefix(SCHEMA_MARK) if description.startswith(SCHEMA_MARK) else "1"


def lake_version(wh: Warehouse) -> str | None:
    """The lake's schema version: the oldest of its tables' (a migration stamps each table last); None for no lake."""
    found = [v for v in (schema_version(wh, name) for name in TABLES) if v is not None]
    return min(found, key=int) if found else None


def stamp(wh: Warehouse, name: str, version: str) -> None:
    """Record that a table now follows schema `version` (one metadata commit)."""
    DeltaTable(_path(wh, name)).alter.set_table_description(f"{SCHEMA_MARK}{version}")


def _conform(name: str, data: pa.Table) -> pa.Table:
    schema = TABLES[name].schema
    return data.select(schema.names).cast(schema)


def append(wh: Warehouse, name: str, data: pa.Table) -> None:
    """Append rows as one Delta commit (nothing is written for an empty table)."""
    if data.num_rows:
        write_deltalake(_path(wh, name), _conform(name, data), mode="append")


def replace(wh: Warehouse, name: str, data: pa.Table, predicate: str) -> None:
    """Atomically replace the rows matching `predicate` by `data` (one commit; old rows stay in time travel)."""
    write_deltalake(_path(wh, name), _conform(name, data), mode="overwrite", predicate=predicate)


def read(wh: Warehouse, name: str, columns: list[str] | None = None, filters=None, version: int | None = None) -> pa.Table:
    """A table's rows (as of Delta `version` when given: time travel until vacuum)."""
    return DeltaTable(_path(wh, name), version=version).to_pyarrow_table(columns=columns, filters=filters)


def active_files(table_path: str) -> tuple[pa.Schema, list[tuple[str, dict[str, str]]]]:
    """A Delta table's schema (partition columns included) and the data files of its current version,
    as absolute file URIs, each with its partition values (which Delta keeps out of the files):
    exactly what a Delta reader reads, never a file that a replace, delete or compaction removed.
    For engines that read Parquet but not Delta."""
    table = DeltaTable(table_path)
    actions = pa.table(table.get_add_actions(flatten=True))
    partitions = [c for c in actions.column_names if c.startswith("partition.")]
    root = table.table_uri.rstrip("/")
    root = root if "://" in root else Path(root).as_uri()
    files = [
        (f"{root}/{path}", {c.removeprefix("partition."): actions[c][i].as_py() for c in partitions})
        for i, path in enumerate(actions["path"].to_pylist())
    ]
    return pa.schema(table.schema().to_arrow()), files


def update(wh: Warehouse, name: str, updates: dict[str, str], predicate: str) -> None:
    """Set columns (SQL expressions) on the rows matching `predicate`, as one commit."""
    DeltaTable(_path(wh, name)).update(updates=updates, predicate=predicate)


def delete(wh: Warehouse, name: str, predicate: str) -> None:
    DeltaTable(_path(wh, name)).delete(predicate)


def committed_batches(wh: Warehouse, atlas: str, job: str | None = None) -> set[str]:
    """Batch ids whose `ingest_batches` row exists: the only batches readers may trust."""
    filters = [("atlas", "=", atlas)] + ([("job", "=", job)] if job else [])
    return set(read(wh, "ingest_batches", ["batch"], filters)["batch"].to_pylist())


def discard_uncommitted(wh: Warehouse, atlas: str) -> int:
    """Delete rows an interrupted run left under batches that never committed; returns batches removed."""
    done = committed_batches(wh, atlas)
    stale: set[str] = set()
    for t in TABLES.values():
        if "batch" not in t.schema.names or t.name == "ingest_batches":
            continue
        if t.partition_by == ("atlas", "batch"):
            batches = {p["batch"] for p in DeltaTable(_path(wh, t.name)).partitions() if p["atlas"] == atlas}
        else:
            batches = set(pc.unique(read(wh, t.name, ["batch"], [("atlas", "=", atlas)])["batch"]).to_pylist())
        orphans = batches - done
        if orphans:
            listed = ", ".join(f"'{b}'" for b in sorted(orphans))
            delete(wh, t.name, f"atlas = '{atlas}' AND batch IN ({listed})")
            stale |= orphans
    return len(stale)


INGESTED = tuple(sorted(set(TABLES) - {"cluster_runs", "cluster_assignments"}))  # what ingest jobs write


# commits that change no row: compaction, vacuum, a description change (the schema stamp of a migration)
MAINTENANCE_OPERATIONS = {"OPTIMIZE", "VACUUM START", "VACUUM END", "UPDATE TABLE METADATA"}


def data_changed(wh: Warehouse, name: str, since: int) -> bool:
    """True when a commit after version `since` changed the table's rows (compaction, vacuum and a
    schema stamp do not; a history cleaned up past `since` counts as changed)."""
    table = DeltaTable(_path(wh, name))
    newer = [h for h in table.history(max(table.version() - since, 1)) if h["version"] > since]
    return len(newer) < table.version() - since or any(h["operation"] not in MAINTENANCE_OPERATIONS for h in newer)


def versions(wh: Warehouse, tables: tuple[str, ...] = INGESTED) -> dict[str, int]:
    """The Delta version of each table: any commit (a batch, a delete) moves at least one."""
    return {name: DeltaTable(_path(wh, name)).version() for name in tables}


def bytes_on_disk(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (0 when absent)."""
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def rows_json(counts: dict[str, int]) -> str:
    return json.dumps(counts, sort_keys=True)
