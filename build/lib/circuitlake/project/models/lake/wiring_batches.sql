-- The committed batches of each atlas's current wiring source (the latest cache ingest or weight computation).
MODEL (
  name lake.wiring_batches,
  kind VIEW,
  column_descriptions (
    atlas = 'Atlas',
    batch = 'A committed wiring batch (one neuron layer)',
    source = 'The current wiring source: cache:<folder> or weights:<checkpoint hash>'
  )
);

with wiring as (
  select atlas, batch, source
  from lake.ingest_batches
  where job = 'wiring'
),

current_source as (
  -- batch ids sort by time: the source of the newest batch is current
  select atlas, arg_max(source, batch) as source
  from wiring
  group by atlas
)

select w.atlas, w.batch, w.source
from wiring as w
join current_source as c
  on w.atlas = c.atlas and w.source = c.source
