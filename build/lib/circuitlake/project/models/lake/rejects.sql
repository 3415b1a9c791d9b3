-- Records that could not be ingested, with file, record and reason.
MODEL (
  name lake.rejects,
  kind VIEW,
  column_descriptions (
    atlas = 'Atlas of the ingest run',
    batch = 'Batch that recorded the reject',
    job = 'graphs | labels | wiring',
    file = 'Input file',
    record = 'Line, offset or JSON path inside the file',
    reason = 'Why it was rejected',
    reject_key = 'sha256(content hash, record, reason): re-runs add no duplicates',
    rejected_at = 'When it was first rejected'
  )
);

select atlas, batch, job, file, record, reason, reject_key, rejected_at
from @lake_scan(rejects)
