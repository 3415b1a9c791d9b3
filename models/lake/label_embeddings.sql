-- Label embeddings of `circuitlake embed`, committed batches only: one vector per neuron, model and label text.
MODEL (
  name lake.label_embeddings,
  kind VIEW,
  column_descriptions (
    atlas = 'Atlas',
    batch = 'Batch that landed the vector',
    run = 'Embedding run',
    layer = 'Neuron layer',
    neuron = 'Neuron index',
    model = 'Embeddings model asked',
    dimensions = 'Vector length',
    text_sha = 'sha256 of the label text embedded',
    embedding = 'The vector (FLOAT list; published as FLOAT[dimensions] in search.embeddings_*)',
    embedded_at = 'When the vector was computed'
  )
);

select *
from @committed_rows(label_embeddings)
