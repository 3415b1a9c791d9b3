-- Raw graph nodes of committed batches (every kind: neuron, transcoder, embedding, logit, error, other).
MODEL (
  name lake.graph_nodes,
  kind VIEW,
  column_descriptions (
    atlas = 'Atlas',
    batch = 'Ingest batch',
    graph_key = 'Graph (lake.graphs.graph_key)',
    kind = 'neuron | transcoder | embedding | logit | error | other, from feature_type / isLogit / id shape',
    layer = 'Model layer (units, errors); null for embedding and logit',
    feature = 'Unit index in its layer (neuron, transcoder feature from the node id), token id (embedding, logit), -1 (error)',
    position = 'Token position (ctx_idx)',
    influence = 'Signed RelP node score (neurons only)',
    activation = 'Activation (neurons only)',
    node_id = 'Raw node id, kept for kind other',
    feature_type = 'Raw feature_type, kept for kind other',
    clerp = 'Display label of a unit node (Neuronpedia), when it is more than the unit''s key'
  )
);

select *
from @committed_rows(graph_nodes)
