-- Provenance per atlas as key/value rows: model, shape, thresholds, row counts, sources and hashes, versions.
MODEL (
  name main.metadata,
  kind FULL,
  grain (atlas, key),
  audits (
    metadata_has_keys
  ),
  column_descriptions (
    atlas = 'Atlas',
    key = 'What the value is',
    value = 'The value, as text'
  )
);

with atlases as (
  select * from lake.atlases
),

graph_counts as (
  select
    atlas,
    count(*) as graphs,
    count(*) filter (where nodes_exceeded) as graphs_nodes_exceeded
  from lake.graphs
  group by atlas
),

edge_counts as (
  select
    atlas,
    count(*) as edges,
    count(*) filter (where method = 'relp') as relp_edges,
    count(*) filter (where method = 'weight_graph') as weight_edges
  from main.edges
  group by atlas
),

wiring_sources as (
  select atlas, max(source) as wiring_source
  from lake.wiring_batches
  group by atlas
),

neuron_counts as (
  select atlas, count(*) as neurons
  from main.neurons
  group by atlas
),

sources as (
  -- one hash over every landed batch's content hash: changes whenever the inputs change
  -- (sorted, comma-joined, nulls skipped; null when there is none: the same text on DuckDB and Spark)
  select
    atlas,
    count(*) as batches,
    sha256(nullif(array_to_string(array_sort(array_agg(content_hash)), ','), '')) as lake_hash,
    sha256(nullif(array_to_string(array_sort(array_agg(case when job = 'graphs' then content_hash end)), ','), '')) as graphs_hash,
    max(finished_at) as last_ingest
  from lake.ingest_batches
  group by atlas
),

latest_cluster_run as (
  select r.*
  from lake.cluster_runs as r
  where r.batch = (select max(x.batch) from lake.cluster_runs as x where x.atlas = r.atlas)
),

facts as (
  select
    a.atlas,
    a.model_id,
    a.num_layers,
    a.neurons_per_layer,
    a.universe,
    a.min_label_coverage,
    a.relp_min_count,
    coalesce(g.graphs, 0) as graphs,
    coalesce(g.graphs_nodes_exceeded, 0) as graphs_nodes_exceeded,
    coalesce(e.edges, 0) as edges,
    coalesce(e.relp_edges, 0) as relp_edges,
    coalesce(e.weight_edges, 0) as weight_edges,
    w.wiring_source,
    coalesce(n.neurons, 0) as neurons,
    coalesce(s.batches, 0) as batches,
    s.lake_hash,
    s.graphs_hash,
    s.last_ingest,
    a.settings,
    c.batch as cluster_run,
    c.edges_hash as cluster_edges_hash,
    c.codelength as cluster_codelength,
    -- clusters are stale once graphs landed after the edges they were computed from
    c.graphs_hash is distinct from s.graphs_hash as clusters_stale
  from atlases as a
  left join graph_counts as g on a.atlas = g.atlas
  left join edge_counts as e on a.atlas = e.atlas
  left join neuron_counts as n on a.atlas = n.atlas
  left join sources as s on a.atlas = s.atlas
  left join latest_cluster_run as c on a.atlas = c.atlas
  left join wiring_sources as w on a.atlas = w.atlas
),

as_text as (
  -- one text column per key: the key is the column name
  select
    atlas,
    model_id,
    cast(num_layers as text) as num_layers,
    cast(neurons_per_layer as text) as neurons_per_layer,
    universe,
    cast(min_label_coverage as text) as min_label_coverage,
    cast(relp_min_count as text) as relp_min_count,
    cast(graphs as text) as graphs,
    cast(graphs_nodes_exceeded as text) as graphs_nodes_exceeded,
    cast(edges as text) as edges,
    cast(relp_edges as text) as relp_edges,
    cast(weight_edges as text) as weight_edges,
    wiring_source,
    cast(neurons as text) as neurons,
    cast(batches as text) as ingest_batches,
    lake_hash,
    graphs_hash,
    settings,
    cluster_run,
    cluster_edges_hash,
    cast(cluster_codelength as text) as cluster_codelength,
    case when cluster_run is null then null else cast(clusters_stale as text) end as clusters_stale,
    cast(last_ingest as text) as last_ingest,
    cast(current_timestamp as text) as build_time,
    @VAR('circuitlake_version') as circuitlake_version,
    @VAR('lake_schema_version') as lake_schema_version
  from facts
)

-- a row per key, null values included: every atlas has every key (audit metadata_has_keys)
select atlas, key, value
from as_text
unpivot include nulls (
  value for key in (
    model_id, num_layers, neurons_per_layer, universe, min_label_coverage, relp_min_count, graphs,
    graphs_nodes_exceeded, edges, relp_edges, weight_edges, wiring_source, neurons, ingest_batches, lake_hash,
    graphs_hash, settings, cluster_run, cluster_edges_hash, cluster_codelength, clusters_stale, last_ingest,
    build_time, circuitlake_version, lake_schema_version
  )
)
