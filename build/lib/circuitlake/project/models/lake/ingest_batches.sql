-- Committed ingest batches: a batch exists for readers once its row is here.
MODEL (
  name lake.ingest_batches,
  kind VIEW,
  column_descriptions (
    atlas = 'Atlas the batch belongs to',
    batch = 'Batch id: <job>-<UTC time>-<random>',
    job = 'graphs | labels | wiring',
    source = 'Unit of replacement (labels, wiring); null for graphs',
    started_at = 'When the batch started',
    finished_at = 'When the batch committed',
    version = 'circuitlake version that wrote it',
    inputs = 'Paths read',
    content_hash = 'sha256 over the sorted hashes of the records landed',
    landed = 'Records landed',
    skipped = 'Records already in the lake',
    rejected = 'Records rejected and newly recorded',
    "rows" = 'JSON: rows written per table'
  )
);

select
  atlas,
  batch,
  job,
  source,
  started_at,
  finished_at,
  version,
  inputs,
  content_hash,
  landed,
  skipped,
  rejected,
  "rows"
from @lake_scan(ingest_batches)
