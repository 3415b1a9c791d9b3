-- The edges again, narrow and sorted by target: a neuron's upstream edges read from a few row groups.
MODEL (
  name main.edges_by_target,
  kind CUSTOM (
    -- a build replaces only the rows of edges the same build changed, sorted by target
    materialization 'upsert_keys',
    materialization_properties (
      key = (atlas, method, src_layer, src_neuron, tgt_layer, tgt_neuron),
      order_by = (atlas, tgt_layer, tgt_neuron, method, src_layer, src_neuron)
    )
  ),
  grain (atlas, method, src_layer, src_neuron, tgt_layer, tgt_neuron),
  columns (
    atlas text,
    tgt_layer smallint,
    tgt_neuron bigint,
    src_layer smallint,
    src_neuron bigint,
    count bigint,
    mean_weight double,
    mean_abs_weight double,
    method text,
    partials_seq bigint
  ),
  column_descriptions (
    atlas = 'Atlas',
    tgt_layer = 'Target neuron layer',
    tgt_neuron = 'Target neuron index',
    src_layer = 'Source neuron layer (< tgt_layer)',
    src_neuron = 'Source neuron index',
    count = 'edges.count',
    mean_weight = 'edges.mean_weight',
    mean_abs_weight = 'edges.mean_abs_weight',
    method = 'edges.method',
    partials_seq = 'edges.partials_seq (bookkeeping of incremental builds)'
  )
);

with indexed as (
  -- this table's own rows (alias and qualify: sqlglot binds unqualified columns to the outer table otherwise)
  select
    t.atlas, t.method, t.src_layer, t.src_neuron, t.tgt_layer, t.tgt_neuron, t.mean_weight, t.partials_seq
  from main.edges_by_target as t
),

watermark as (
  select coalesce(max(partials_seq), 0) as seq from indexed
),

relp as (
  -- RelP edges merged after the newest pass indexed here
  select e.*
  from main.edges as e
  where e.method = 'relp' and e.partials_seq > (select seq from watermark)
),

weight_graph as (
  -- weight-graph edges not indexed with their current strength
  select e.*
  from main.edges as e
  anti join indexed as i
    on e.atlas = i.atlas and e.method = i.method
   and e.src_layer = i.src_layer and e.src_neuron = i.src_neuron
   and e.tgt_layer = i.tgt_layer and e.tgt_neuron = i.tgt_neuron
   and e.mean_weight = i.mean_weight
  where e.method = 'weight_graph'
),

changed as (
  select * from relp
  union all
  select * from weight_graph
)

select
  atlas,
  tgt_layer,
  tgt_neuron,
  src_layer,
  src_neuron,
  count,
  mean_weight,
  mean_abs_weight,
  method,
  partials_seq
from changed
