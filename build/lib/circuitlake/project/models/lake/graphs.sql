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
    neuron_count = 'Neuron nodes in the file',
    link_count = 'Links in the file',
    dangling_links = 'Links whose endpoint is not among the nodes (kept, parsed from the id)'
  )
);

select g.*
from @lake_scan(graphs) as g
semi join lake.ingest_batches as b
  on g.atlas = b.atlas and g.batch = b.batch
