-- Weight-based wiring lists of the current source: one row per listed connection (latest batch per layer).
MODEL (
  name lake.wiring,
  kind VIEW,
  column_descriptions (
    atlas = 'Atlas',
    batch = 'Ingest batch (one neuron layer)',
    source = 'cache:<folder> or weights:<checkpoint hash>',
    layer = 'Layer of the neuron whose list this is',
    neuron = 'The neuron whose list this is',
    direction = 'upstream (other -> neuron) | downstream (neuron -> other)',
    polarity = 'excitatory | inhibitory list',
    rank = 'Position in the list, 1 = strongest',
    other_layer = 'Layer of the connected neuron',
    other_neuron = 'The connected neuron',
    c_up = 'W_up[t] . d_s (null when the cache omits it)',
    c_gate = 'W_gate[t] . d_s (null when the cache omits it)',
    effective_strength = '+-(|c_up| + |c_gate|), signed by polarity',
    predicted_polarity = 'Polarity predicted by the producer (null when absent)'
  )
);

select t.*
from @lake_scan(wiring) as t
semi join lake.wiring_batches as b
  on t.atlas = b.atlas and t.batch = b.batch
-- a layer landed twice under the same source (a newer file): its newest batch wins
qualify t.batch = max(t.batch) over (partition by t.atlas, t.layer)
