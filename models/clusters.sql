-- Infomap modules: one row per path prefix of every clustered neuron, with its size and layer span.
MODEL (
  name main.clusters,
  kind FULL,
  grain (atlas, cluster_path),
  audits (
    unique_combination_of_columns(columns := (atlas, cluster_path)),  -- a path prefix appears once per atlas
    clusters_size_equals_neurons_under_it,
    clusters_median_within_layer_range
  ),
  column_descriptions (
    atlas = 'Atlas',
    cluster_path = 'Path prefix, e.g. 3.12 (a full neuron path is a leaf: its last component is the neuron''s rank in its module)',
    level = 'Number of path components',
    top_cluster = 'First component',
    sub_module = 'Second component (level >= 2)',
    subsub_module = 'Third component (level >= 3)',
    size = 'Clustered neurons under the prefix (1 for a leaf)',
    layer_min = 'Lowest layer under the prefix',
    layer_max = 'Highest layer under the prefix',
    median_layer = 'Median layer under the prefix',
    is_module = 'True for a real module (a prefix with a longer path under it); false for a leaf, i.e. one neuron'
  )
);

with members as (
  select atlas, layer, cluster_path, hierarchy_depth
  from main.neurons
  where cluster_path is not null
),

prefixes as (
  -- every neuron yields one row per prefix of its path, the leaf (its whole path) included
  select
    m.atlas,
    m.layer,
    m.hierarchy_depth,
    p.level,
    array_to_string(array_slice(string_split(m.cluster_path, '.'), 1, p.level), '.') as cluster_path
  from members as m
  cross join unnest(generate_series(1, m.hierarchy_depth)) as p(level)
)

select
  atlas,
  cluster_path,
  level,
  @path_part(cluster_path, 1) as top_cluster,
  @path_part(cluster_path, 2) as sub_module,
  @path_part(cluster_path, 3) as subsub_module,
  count(*) as size,
  min(layer) as layer_min,
  max(layer) as layer_max,
  median(layer) as median_layer,
  max(hierarchy_depth) > level as is_module
from prefixes
group by atlas, cluster_path, level
