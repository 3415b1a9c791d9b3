-- Raw graph nodes of committed batches (every kind: neuron, embedding, logit, other).
MODEL (
  name lake.graph_nodes,
  kind VIEW,
  column_descriptions (
    atlas = 'Atlas',
    batch = 'Ingest batch',
    graph_key = 'Graph (lake.graphs.graph_key)',
    kind = 'neuron | embedding | logit | other, from feature_type / isLogit / id shape',
    layer = 'Model layer (neurons); null for embedding and logit',
    feature = 'Neuron index, or token id for embedding and logit',
    position = 'Token position (ctx_idx)',
    influence = 'Signed RelP node score (neurons only)',
    activation = 'Activation (neurons only)',
    node_id = 'Raw node id, kept for kind other',
    feature_type = 'Raw feature_type, kept for kind other'
  )
);

select n.*
from @lake_scan(graph_nodes) as n
semi join lake.ingest_batches as b
  on n.atlas = b.atlas and n.batch = b.batch
