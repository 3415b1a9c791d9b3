-- Output projections of the current wiring source: top promoted / suppressed tokens per neuron (latest batch per layer).
MODEL (
  name lake.projections,
  kind VIEW,
  column_descriptions (
    atlas = 'Atlas',
    batch = 'Ingest batch (one neuron layer)',
    source = 'cache:<folder> or weights:<checkpoint hash>',
    layer = 'Neuron layer',
    neuron = 'Neuron index',
    kind = 'promotes | suppresses | activates',
    rank = '1 = strongest',
    token_id = 'Token id',
    token = 'Token text (null when no local tokenizer)',
    weight = '(W_U d_s)[token]'
  )
);

-- committed batches of the current wiring source; a layer landed twice (a newer file): its newest batch wins
select w.*
from @newest_wiring_layers(projections) as w
