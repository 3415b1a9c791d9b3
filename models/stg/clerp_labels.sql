-- Per-batch display labels (clerp) that graphs carry on unit nodes: Neuronpedia writes a feature's explanation there.
MODEL (
  name stg.clerp_labels,
  kind CUSTOM (
    -- each restatement inserts the labels of batches not read yet, 64 batches a pass; the table's ledger
    -- records every batch a pass read, clerps or not
    materialization 'append_batches'
  ),
  -- reads_clerps: a build restates it only when a new graph batch carries a clerp (app/build.py)
  tags (reads_lake, reads_clerps),
  grain (atlas, batch, layer, neuron),
  columns (
    atlas text,
    batch text,
    seq bigint,
    layer smallint,
    neuron bigint,
    clerp text,
    graphs bigint
  ),
  column_descriptions (
    atlas = 'Atlas',
    batch = 'Ingest batch of the graphs',
    seq = 'Append pass that wrote the row (ascending)',
    layer = 'Unit layer',
    neuron = 'Unit index (MLP neuron or transcoder feature)',
    clerp = 'The clerp most graphs of the batch give the unit (ties: the smallest text)',
    graphs = 'Unit nodes of the batch carrying that clerp'
  )
);

with previous as (
  -- the batches this table holds, by pass: answered from its ledger (alias and qualify: sqlglot binds
  -- unqualified columns to the outer table otherwise)
  select cl.atlas, cl.batch, cl.seq
  from stg.clerp_labels as cl
),

pass as (
  @next_pass()
),

new_batches as (
  -- graph batches this table does not hold yet, 64 a pass
  @new_batches('graphs')
),

labeled_nodes as (
  -- ingest keeps a clerp only on unit nodes, and only when it says more than the unit's key
  select n.atlas, n.batch, n.layer, n.feature as neuron, n.clerp
  from lake.graph_nodes as n
  semi join new_batches as b
    on n.atlas = b.atlas and n.batch = b.batch
  where n.clerp is not null
),

counted as (
  select atlas, batch, layer, neuron, clerp, count(*) as graphs
  from labeled_nodes
  group by atlas, batch, layer, neuron, clerp
),

ranked as (
  select
    *,
    row_number() over (partition by atlas, batch, layer, neuron order by graphs desc, clerp) as pick
  from counted
)

select
  r.atlas,
  r.batch,
  pass.seq,
  r.layer,
  r.neuron,
  r.clerp,
  r.graphs
from ranked as r
cross join pass
where r.pick = 1
