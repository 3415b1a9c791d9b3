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

select t.*
from @lake_scan(projections) as t
semi join lake.wiring_batches as b
  on t.atlas = b.atlas and t.batch = b.batch
-- a layer landed twice under the same source (a newer file): its newest batch wins
qualify t.batch = max(t.batch) over (partition by t.atlas, t.layer)
