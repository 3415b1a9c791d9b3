-- Published edges: RelP (partials merged, kept at the atlas's count threshold) and weight-graph (downstream wiring).
MODEL (
  name main.edges,
  kind CUSTOM (
    -- a build replaces only the rows of keys that new partials or new wiring touched, sorted by source;
    -- a first build merges in hash buckets of the source, one per $CIRCUITLAKE_MERGE_ROWS partial rows
    -- (default 120M for the 5GB budget), so no aggregate outgrows the memory budget
    materialization 'upsert_keys',
    materialization_properties (
      key = (atlas, method, src_layer, src_neuron, tgt_layer, tgt_neuron),
      order_by = (atlas, src_layer, src_neuron, method, tgt_layer, tgt_neuron),
      bucket_by = (src_layer, src_neuron),
      bucket_cte = partials
    )
  ),
  grain (atlas, method, src_layer, src_neuron, tgt_layer, tgt_neuron),
  columns (
    atlas text,
    src_layer smallint,
    src_neuron bigint,
    tgt_layer smallint,
    tgt_neuron bigint,
    count bigint,
    weight_sum double,
    weight_abs_sum double,
    weight_sq_sum double,
    weight_min double,
    weight_max double,
    mean_weight double,
    mean_abs_weight double,
    method text,
    partials_seq bigint
  ),
  audits (
    -- an edge appears once per (atlas, method, source neuron, target neuron)
    unique_combination_of_columns(columns := (atlas, method, src_layer, src_neuron, tgt_layer, tgt_neuron)),
    edges_below_threshold,
    edges_layer_order,
    edges_mean_within_range,
    edges_mean_abs_bounds,
    edges_statistics_are_finite
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
    method = 'relp (aggregated from attribution graphs) | weight_graph (from model weights)',
    partials_seq = 'Newest stg.edge_partials pass merged into the row (bookkeeping of incremental builds; null for weight_graph)'
  )
);

with published as (
  -- this table's own rows (alias and qualify: sqlglot binds unqualified columns to the outer table otherwise)
  select e.atlas, e.method, e.src_layer, e.src_neuron, e.tgt_layer, e.tgt_neuron, e.weight_sum, e.partials_seq
  from main.edges as e
),

watermark as (
  -- partials passes up to here are merged; a key merged again comes out the same, so lagging is harmless
  select coalesce(max(partials_seq), 0) as seq from published
),

touched as (
  -- the keys of the passes not merged yet, by their fingerprint: one column to match instead of five (the
  -- five-column join of every partial row was the slowest step of a build after new batches)
  select distinct p.key_hash
  from stg.edge_partials as p
  cross join watermark as w
  where p.seq > w.seq and w.seq > 0
),

partials as (
  -- a first build (empty table) merges every partial; later builds every partial of a touched key (and of
  -- a key whose fingerprint collides with one: merged again from all its partials, it comes out the same)
  select p.*
  from stg.edge_partials as p
  where (select seq from watermark) = 0
  union all
  select p.*
  from stg.edge_partials as p
  semi join touched as t
    on p.key_hash = t.key_hash
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
    max(weight_max) as weight_max,
    max(seq) as partials_seq
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
    'relp' as method,
    m.partials_seq
  from merged as m
  join thresholds as t
    on m.atlas = t.atlas
  -- research pipeline: a RelP edge is published when seen count >= 3 times (the atlas's relp_min_count)
  where m.count >= t.relp_min_count
),

wiring_edges as (
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
    'weight_graph' as method,
    cast(null as bigint) as partials_seq
  from lake.wiring
  where direction = 'downstream'
),

weight_graph as (
  -- only connections not yet published with this strength
  select w.*
  from wiring_edges as w
  anti join published as e
    on e.method = 'weight_graph' and w.atlas = e.atlas
   and w.src_layer = e.src_layer and w.src_neuron = e.src_neuron
   and w.tgt_layer = e.tgt_layer and w.tgt_neuron = e.tgt_neuron
   and w.weight_sum = e.weight_sum
)

select * from relp
union all
select * from weight_graph
