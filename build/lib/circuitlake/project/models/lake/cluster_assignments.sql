-- Infomap assignments of each atlas's latest committed clustering run.
MODEL (
  name lake.cluster_assignments,
  kind VIEW,
  column_descriptions (
    atlas = 'Atlas',
    batch = 'The clustering run',
    layer = 'Neuron layer',
    neuron = 'Neuron index',
    cluster_path = 'Infomap path, e.g. 3.12.7 (the last component is the leaf''s rank in its module)',
    flow = 'Infomap flow of the leaf'
  )
);

with latest as (
  -- batch ids sort by time: the latest committed run is current
  select atlas, max(batch) as batch
  from lake.ingest_batches
  where job = 'cluster'
  group by atlas
)

select a.*
from @lake_scan(cluster_assignments) as a
semi join latest as l
  on a.atlas = l.atlas and a.batch = l.batch
