-- Graphs containing each neuron, kept up to date by adding the counts of index passes not seen yet.
MODEL (
  name stg.neuron_appearances,
  kind CUSTOM (
    -- a build replaces only the rows of neurons that new graphs contain
    materialization 'upsert_keys',
    materialization_properties (
      key = (atlas, layer, neuron),
      order_by = (atlas, layer, neuron)
    )
  ),
  grain (atlas, layer, neuron),
  columns (
    atlas text,
    layer smallint,
    neuron bigint,
    appearance_count bigint,
    graphs_seq bigint
  ),
  column_descriptions (
    atlas = 'Atlas',
    layer = 'Neuron layer',
    neuron = 'Neuron index',
    appearance_count = 'Graphs containing the neuron (neuron_graphs rows)',
    graphs_seq = 'Newest neuron_graphs pass counted (bookkeeping of incremental builds)'
  )
);

with counted as (
  -- this table's own rows (alias and qualify: sqlglot binds unqualified columns to the outer table otherwise)
  select a.atlas, a.layer, a.neuron, a.appearance_count, a.graphs_seq
  from stg.neuron_appearances as a
),

watermark as (
  -- passes up to here are counted; the count and this mark move together in one transaction
  select coalesce(max(graphs_seq), 0) as seq from counted
),

fresh as (
  -- appearance = graphs containing the neuron; neuron_graphs has one row per (graph, neuron)
  select ng.atlas, ng.layer, ng.neuron, count(*) as graphs, max(ng.seq) as seq
  from main.neuron_graphs as ng
  where ng.seq > (select seq from watermark)
  group by ng.atlas, ng.layer, ng.neuron
)

select
  f.atlas,
  f.layer,
  f.neuron,
  coalesce(c.appearance_count, 0) + f.graphs as appearance_count,
  f.seq as graphs_seq
from fresh as f
left join counted as c
  on f.atlas = c.atlas and f.layer = c.layer and f.neuron = c.neuron
