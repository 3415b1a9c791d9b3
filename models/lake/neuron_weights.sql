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

-- committed batches of the current wiring source; a layer landed twice (a newer file): its newest batch wins
select w.*
from @newest_wiring_layers(neuron_weights) as w
