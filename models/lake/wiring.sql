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

-- committed batches of the current wiring source; a layer landed twice (a newer file): its newest batch wins
select w.*
from @newest_wiring_layers(wiring) as w
