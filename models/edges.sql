-- Published edges: RelP (partials merged, kept at the atlas's count threshold) and weight-graph (downstream wiring).
MODEL (
  name main.edges,
  kind FULL,
  grain (atlas, method, src_layer, src_neuron, tgt_layer, tgt_neuron),
  audits (
    edges_unique_key,
    edges_below_threshold,
    edges_layer_order,
    edges_mean_within_range,
    edges_mean_abs_bounds
  ),
  column_descriptions (
    atlas = 'Atlas',
    src_layer = 'Source neuron layer',
    src_neuron = 'Source neuron index',
    tgt_layer = 'Target neuron layer (> src_layer)',
    tgt_neuron = 'Target neuron index',
    count = 'Link observations over all graphs (the same pair at two positions of one graph counts twice)',
    weight_sum = 'Sum of link weights',
    weight_abs_sum = 'Sum of |weight|',
    weight_sq_sum = 'Sum of weight^2',
    weight_min = 'Smallest weight',
    weight_max = 'Largest weight',
    mean_weight = 'weight_sum / count',
    mean_abs_weight = 'weight_abs_sum / count',
    method = 'relp (aggregated from attribution graphs) | weight_graph (from model weights)'
  )
);

with partials as (
  select * from stg.edge_partials
),

merged as (
  -- merging partials: counts and sums add, extremes take the extreme
  select
    atlas,
    src_layer,
    src_neuron,
    tgt_layer,
    tgt_neuron,
    cast(sum(count) as bigint) as count,
    sum(weight_sum) as weight_sum,
    sum(weight_abs_sum) as weight_abs_sum,
    sum(weight_sq_sum) as weight_sq_sum,
    min(weight_min) as weight_min,
    max(weight_max) as weight_max
  from partials
  group by atlas, src_layer, src_neuron, tgt_layer, tgt_neuron
),

thresholds as (
  select atlas, relp_min_count from lake.atlases
),

relp as (
  select
  m.atlas,
  m.src_layer,
  m.src_neuron,
  m.tgt_layer,
  m.tgt_neuron,
  m.count,
  m.weight_sum,
  m.weight_abs_sum,
  m.weight_sq_sum,
  m.weight_min,
  m.weight_max,
  m.weight_sum / m.count as mean_weight,
  m.weight_abs_sum / m.count as mean_abs_weight,
  'relp' as method
from merged as m
join thresholds as t
  on m.atlas = t.atlas
-- research pipeline: a RelP edge is published when seen count >= 3 times (the atlas's relp_min_count)
where m.count >= t.relp_min_count
),

weight_graph as (
  -- weight-graph edges come from downstream wiring: count = 1, every weight stat = effective_strength
  select
    atlas,
    cast(layer as smallint) as src_layer,
    cast(neuron as bigint) as src_neuron,
    cast(other_layer as smallint) as tgt_layer,
    cast(other_neuron as bigint) as tgt_neuron,
    cast(1 as bigint) as count,
    effective_strength as weight_sum,
    abs(effective_strength) as weight_abs_sum,
    effective_strength * effective_strength as weight_sq_sum,
    effective_strength as weight_min,
    effective_strength as weight_max,
    effective_strength as mean_weight,
    abs(effective_strength) as mean_abs_weight,
    'weight_graph' as method
  from lake.wiring
  where direction = 'downstream'
)

select * from relp
union all
select * from weight_graph
