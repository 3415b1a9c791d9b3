-- The neuron -> graph index: which graphs contain each neuron, its max |influence| and positions there.
MODEL (
  name main.neuron_graphs,
  kind CUSTOM (
    -- each restatement inserts the graphs of batches not indexed yet, 64 batches a pass, each pass sorted
    -- by neuron: a neuron's graphs are found in one narrow range of every pass (a page reads them)
    materialization 'append_batches',
    materialization_properties (
      order_by = (atlas, layer, neuron)
    )
  ),
  tags (reads_lake),
  grain (atlas, graph_key, layer, neuron),
  columns (
    atlas text,
    batch text,
    seq bigint,
    graph_key bigint,
    layer smallint,
    neuron bigint,
    max_abs_influence double,
    positions bigint[]
  ),
  column_descriptions (
    atlas = 'Atlas',
    batch = 'Ingest batch of the graph',
    seq = 'Append pass that wrote the row (ascending): stg.neuron_appearances counts the passes it has not seen',
    graph_key = 'Graph (lake.graphs.graph_key)',
    layer = 'Neuron layer',
    neuron = 'Neuron index',
    max_abs_influence = 'Largest |influence| of the neuron in the graph',
    positions = 'Token positions where the neuron appears, ascending'
  )
);

with previous as (
  -- this table's own rows (alias and qualify: sqlglot binds unqualified columns to the outer table otherwise)
  select ng.atlas, ng.batch, ng.seq
  from main.neuron_graphs as ng
),

pass as (
  @next_pass()
),

new_batches as (
  -- graph batches this table does not hold yet, 64 a pass
  @new_batches('graphs')
),

unit_nodes as (
  -- units: nodes of the atlas's unit kind (MLP neurons or transcoder features)
  select n.atlas, n.batch, n.graph_key, n.layer, n.feature as neuron, n.position, n.influence
  from lake.graph_nodes as n
  semi join new_batches as b
    on n.atlas = b.atlas and n.batch = b.batch
  join lake.atlases as a
    on n.atlas = a.atlas and n.kind = a.unit
),

fresh as (
  select
    atlas,
    batch,
    (select seq from pass) as seq,
    graph_key,
    layer,
    neuron,
    max(abs(influence)) as max_abs_influence,
    array_sort(array_agg(distinct position)) as positions
  from unit_nodes
  group by atlas, batch, graph_key, layer, neuron
)

select * from fresh
