-- One row per attribution graph in a committed batch.
MODEL (
  name lake.graphs,
  kind VIEW,
  column_descriptions (
    atlas = 'Atlas',
    batch = 'Ingest batch',
    graph_id = 'sha256 of the decompressed graph file',
    graph_key = 'First 8 bytes of graph_id as BIGINT: the key of graph_nodes and graph_links',
    source_path = 'File the graph was read from',
    slug = 'metadata.slug',
    scan = 'metadata.scan',
    prompt = 'metadata.prompt',
    prompt_tokens = 'metadata.prompt_tokens',
    corpus_index = 'metadata.corpus_index',
    node_threshold = 'Node threshold of the RelP run',
    metric_value = 'generation_settings.metric_value',
    target_position = 'Target token position',
    nodes_exceeded = 'More than max_nodes candidates: the graph carries no neuron->neuron links',
    node_count = 'Nodes in the file',
    neuron_count = 'Unit nodes in the file (the atlas''s unit kind: MLP neurons or transcoder features)',
    link_count = 'Links landed (every link of the file but zero-weight ones)',
    dangling_links = 'Links whose endpoint is not among the nodes (kept, parsed from the id)',
    ambiguous_links = 'Links naming an id that two different nodes hold (kept with kind ambiguous, never a unit link; null: landed before schema 6)',
    zero_weight_links = 'Links of weight 0 in the file (dropped; null: landed before schema 6)',
    error_nodes = 'Transcoder error nodes (kind error; null: landed before schema 6)',
    generator = 'metadata.info.generator name and version (Neuronpedia)',
    transcoder_set = 'metadata.info.transcoder_set / source_set, or the transcoder_list'
  )
);

select *
from @committed_rows(graphs)
