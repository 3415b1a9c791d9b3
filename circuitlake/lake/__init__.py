"""The storage boundary: every read and write of the Delta lake goes through this package.

Tables live under `<warehouse>/lake/<table>` (catalogue). Jobs append one Delta commit per table per
batch and write the batch's `ingest_batches` row (its marker) last: a batch is *committed* once that row
exists (commit). Readers (SQLMesh models, idempotency checks) only trust committed batches (markers), and
`discard_uncommitted` removes what an interrupted run left behind, so the lake is always consistent.

    catalogue      table names, schemas, partitioning, the schema version
    io             create, append, replace, update, delete, read, versions (one Delta commit per write)
    markers        what has been committed: the questions asked of `ingest_batches`
    commit         Batch (the commit protocol), Reject, batch ids and content hashes, IngestReport
    parquet_files  a table as SQL over its active Parquet files (Spark without delta-spark: macros/lake.py)
"""

from circuitlake.lake.catalogue import INGESTED, SCHEMA_MARK, SCHEMA_VERSION, TABLES, LakeTable, row_schema
from circuitlake.lake.commit import (
    Batch,
    IngestReport,
    Landing,
    Reject,
    content_hash,
    discard_uncommitted,
    known_reject_keys,
    new_batch_id,
    now,
    reject_key,
    rows_json,
    swap_markers,
)
from circuitlake.lake.io import (
    MAINTENANCE_OPERATIONS,
    LakeOutdated,
    active_files,
    add_missing_columns,
    all_null,
    append,
    bytes_on_disk,
    create_missing,
    data_changed,
    delete,
    ensure,
    lake_version,
    log_stamp,
    partition_files,
    read,
    replace,
    schema_version,
    stamp,
    update,
    versions,
)
from circuitlake.lake.markers import Inputs, Marker, committed_batches, landed_hashes, latest_hash, markers

__all__ = [
    "INGESTED",
    "MAINTENANCE_OPERATIONS",
    "SCHEMA_MARK",
    "SCHEMA_VERSION",
    "TABLES",
    "Batch",
    "IngestReport",
    "Inputs",
    "LakeOutdated",
    "LakeTable",
    "Landing",
    "Marker",
    "Reject",
    "active_files",
    "all_null",
    "add_missing_columns",
    "append",
    "bytes_on_disk",
    "committed_batches",
    "content_hash",
    "create_missing",
    "data_changed",
    "delete",
    "discard_uncommitted",
    "ensure",
    "known_reject_keys",
    "lake_version",
    "log_stamp",
    "partition_files",
    "landed_hashes",
    "latest_hash",
    "markers",
    "new_batch_id",
    "now",
    "read",
    "reject_key",
    "replace",
    "row_schema",
    "rows_json",
    "schema_version",
    "stamp",
    "swap_markers",
    "update",
    "versions",
]
