-- Raw graph links of committed batches: every link, embedding and logit links included.
MODEL (
  name lake.graph_links,
  kind VIEW,
  column_descriptions (
    atlas = 'Atlas',
    batch = 'Ingest batch',
    graph_key = 'Graph (lake.graphs.graph_key)',
    src_kind = 'Source node kind',
    src_layer = 'Source layer (neurons)',
    src_feature = 'Source neuron index or token id',
    src_pos = 'Source token position',
    tgt_kind = 'Target node kind',
    tgt_layer = 'Target layer (neurons)',
    tgt_feature = 'Target neuron index or token id',
    tgt_pos = 'Target token position',
    weight = 'Link weight (attribution flow)'
  )
);

select *
from @committed_rows(graph_links)
