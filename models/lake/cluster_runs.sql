-- Committed clustering runs: settings, the edges snapshot read (hashes) and Infomap's figures.
MODEL (
  name lake.cluster_runs,
  kind VIEW,
  column_descriptions (
    atlas = 'Atlas',
    batch = 'The run (a lake batch)',
    settings = 'JSON: method, min_count, seed, trials, threads',
    method = 'Edges clustered: relp | weight_graph',
    edges_hash = 'sha256 of the ordered (src, tgt, weight) links given to Infomap',
    edges = 'Links given to Infomap',
    neurons = 'Neurons given to Infomap',
    graphs_hash = 'metadata.graphs_hash of the edges read (clusters are stale when it moves on)',
    infomap_version = 'Infomap version',
    codelength = 'Codelength of the solution',
    top_modules = 'Top-level modules',
    levels = 'Levels of the hierarchy',
    seconds = 'Infomap wall time'
  )
);

select *
from @committed_rows(cluster_runs)
