-- One row per neuron of each atlas's universe, with appearance counts (labels and clusters join later).
MODEL (
  name main.neurons,
  kind FULL,
  tags (reads_clusters),
  grain (atlas, layer, neuron),
  audits (
    unique_combination_of_columns(columns := (atlas, layer, neuron)),  -- a neuron appears once per atlas
    neurons_inside_shape,
    neurons_feature_id_formula,
    neurons_unclustered_have_no_cluster_columns
  ),
  column_descriptions (
    atlas = 'Atlas',
    layer = 'Model layer',
    neuron = 'Neuron index inside the layer',
    feature_id = 'layer * neurons_per_layer + neuron',
    unit_type = 'mlp_neuron (MLP neuron) or transcoder (transcoder feature): the atlas''s unit',
    label = 'Atlas label (by the atlas label precedence); null when unlabeled',
    input_label = 'What triggers the neuron (pass 2)',
    output_label = 'What the neuron does (pass 1)',
    description = 'Longer description of the label',
    max_activation = 'Largest activation seen by the labeler',
    num_exemplars = 'Exemplars the labeler saw',
    appearance_count = 'Graphs containing the neuron (deduplicated within a graph)',
    output_norm = '||d_s||: norm of the neuron''s down-projection column',
    cluster_path = 'Infomap path, e.g. 3.12.7 (last component: rank inside its module)',
    top_cluster = 'First path component',
    sub_module = 'Second path component',
    subsub_module = 'Third path component',
    hierarchy_depth = 'Number of path components',
    infomap_flow = 'Infomap flow of the leaf'
  )
);

with atlases as (
  select atlas, num_layers, neurons_per_layer, universe, unit from lake.atlases
),

appearances as (
  select atlas, layer, neuron, appearance_count from stg.neuron_appearances
),

grid as (
  -- universe 'grid': every neuron of the model
  select a.atlas, l.layer, n.neuron
  from atlases as a
  cross join unnest(generate_series(0, a.num_layers - 1)) as l(layer)
  cross join unnest(generate_series(0, a.neurons_per_layer - 1)) as n(neuron)
  where a.universe = 'grid'
),

wired as (
  select atlas, layer, neuron from lake.wiring
  union
  select atlas, other_layer as layer, other_neuron as neuron from lake.wiring
),

observed as (
  -- universe 'observed': neurons that appear in graphs or wiring (never "has a label")
  select s.atlas, s.layer, s.neuron
  from (
    select atlas, layer, neuron from appearances
    union
    select atlas, layer, neuron from wired
  ) as s
  join atlases as a
    on s.atlas = a.atlas
  where a.universe = 'observed'
),

universe as (
  select atlas, layer, neuron from grid
  union all
  select atlas, layer, neuron from observed
),

assignments as (
  -- Infomap path "3.12.7": top_cluster 3, sub_module 12, subsub_module 7, hierarchy_depth 3
  select
    atlas,
    layer,
    neuron,
    cluster_path,
    @path_part(cluster_path, 1) as top_cluster,
    @path_part(cluster_path, 2) as sub_module,
    @path_part(cluster_path, 3) as subsub_module,
    length(cluster_path) - length(replace(cluster_path, '.', '')) + 1 as hierarchy_depth,
    flow as infomap_flow
  from lake.cluster_assignments
)

select
  u.atlas,
  cast(u.layer as int) as layer,
  cast(u.neuron as int) as neuron,
  cast(u.layer as bigint) * a.neurons_per_layer + u.neuron as feature_id,
  case a.unit when 'transcoder' then 'transcoder' else 'mlp_neuron' end as unit_type,
  lb.label,
  lb.input_label,
  lb.output_label,
  lb.description,
  lb.max_activation,
  cast(lb.num_exemplars as int) as num_exemplars,
  coalesce(ap.appearance_count, 0) as appearance_count,
  -- ||d_s|| from the weights when computed, else what a label source carries
  coalesce(nw.output_norm, lb.output_norm) as output_norm,
  c.cluster_path,
  c.top_cluster,
  c.sub_module,
  c.subsub_module,
  cast(c.hierarchy_depth as int) as hierarchy_depth,
  c.infomap_flow
from universe as u
join atlases as a
  on u.atlas = a.atlas
left join appearances as ap
  on u.atlas = ap.atlas and u.layer = ap.layer and u.neuron = ap.neuron
-- labels never widen the universe: a label for a neuron outside it is only counted in the report
left join stg.neuron_labels as lb
  on u.atlas = lb.atlas and u.layer = lb.layer and u.neuron = lb.neuron
left join lake.neuron_weights as nw
  on u.atlas = nw.atlas and u.layer = nw.layer and u.neuron = nw.neuron
left join assignments as c
  on u.atlas = c.atlas and u.layer = c.layer and u.neuron = c.neuron
