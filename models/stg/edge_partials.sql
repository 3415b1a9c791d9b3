-- Per-batch partial aggregates of neuron->neuron links; each new committed batch is aggregated once.
MODEL (
  name stg.edge_partials,
  kind INCREMENTAL_UNMANAGED (
    forward_only false
  ),
  allow_partials true,
  grain (atlas, batch, src_layer, src_neuron, tgt_layer, tgt_neuron),
  columns (
    atlas text,
    batch text,
    src_layer smallint,
    src_neuron bigint,
    tgt_layer smallint,
    tgt_neuron bigint,
    count bigint,
    weight_sum double,
    weight_abs_sum double,
    weight_sq_sum double,
    weight_min double,
    weight_max double
  ),
  column_descriptions (
    atlas = 'Atlas',
    batch = 'Ingest batch the partial aggregates',
    src_layer = 'Source neuron layer',
    src_neuron = 'Source neuron index',
    tgt_layer = 'Target neuron layer',
    tgt_neuron = 'Target neuron index',
    count = 'Link observations in the batch (not graphs)',
    weight_sum = 'Sum of weights',
    weight_abs_sum = 'Sum of |weight|',
    weight_sq_sum = 'Sum of weight^2',
    weight_min = 'Smallest weight',
    weight_max = 'Largest weight'
  )
);

with graph_batches as (
  select atlas, batch
  from lake.ingest_batches
  where job = 'graphs'
),

processed as (
  -- this model's own rows: batches already aggregated (alias and qualify: sqlglot binds to the outer table otherwise)
  select distinct p.atlas, p.batch
  from stg.edge_partials as p
),

new_batches as (
  select atlas, batch from graph_batches
  except
  select atlas, batch from processed
),

neuron_links as (
  -- only neuron->neuron links make edges; embedding and logit links stay raw
  select
    l.atlas,
    l.batch,
    l.src_layer,
    l.src_feature as src_neuron,
    l.tgt_layer,
    l.tgt_feature as tgt_neuron,
    l.weight
  from lake.graph_links as l
  semi join new_batches as n
    on l.atlas = n.atlas and l.batch = n.batch
  where l.src_kind = 'neuron' and l.tgt_kind = 'neuron'
)

select
  atlas,
  batch,
  src_layer,
  src_neuron,
  tgt_layer,
  tgt_neuron,
  -- positions are collapsed: one pair seen at two position pairs of one graph counts twice
  count(*) as count,
  sum(weight) as weight_sum,
  sum(abs(weight)) as weight_abs_sum,
  sum(weight * weight) as weight_sq_sum,
  min(weight) as weight_min,
  max(weight) as weight_max
from neuron_links
group by atlas, batch, src_layer, src_neuron, tgt_layer, tgt_neuron
