-- Per-neuron weight facts of the current wiring source: ||d_s|| (latest batch per layer).
MODEL (
  name lake.neuron_weights,
  kind VIEW,
  column_descriptions (
    atlas = 'Atlas',
    batch = 'Ingest batch (one neuron layer)',
    source = 'cache:<folder> or weights:<checkpoint hash>',
    layer = 'Neuron layer',
    neuron = 'Neuron index',
    output_norm = 'Norm of the down-projection column d_s'
  )
);

select t.*
from @lake_scan(neuron_weights) as t
semi join lake.wiring_batches as b
  on t.atlas = b.atlas and t.batch = b.batch
-- a layer landed twice under the same source (a newer file): its newest batch wins
qualify t.batch = max(t.batch) over (partition by t.atlas, t.layer)
