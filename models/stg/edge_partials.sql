-- Partial aggregates of unit->unit links, one row per key and append pass: appended for new committed batches, never rewritten.
MODEL (
  name stg.edge_partials,
  kind CUSTOM (
    -- each restatement inserts the partials of batches not aggregated yet, 64 batches a pass; the
    -- table's ledger records which batches each pass took
    materialization 'append_batches'
  ),
  tags (reads_lake),
  grain (atlas, seq, src_layer, src_neuron, tgt_layer, tgt_neuron),
  columns (
    atlas text,
    batch text,
    seq bigint,
    src_layer smallint,
    src_neuron bigint,
    tgt_layer smallint,
    tgt_neuron bigint,
    key_hash bigint,
    count bigint,
    weight_sum double,
    weight_abs_sum double,
    weight_sq_sum double,
    weight_min double,
    weight_max double
  ),
  column_descriptions (
    atlas = 'Atlas',
    batch = 'Newest ingest batch of the pass that wrote the row (passes take batches in name order; the table''s ledger lists them all)',
    seq = 'Append pass that wrote the row (ascending): edges merges the keys of passes it has not seen',
    src_layer = 'Source neuron layer',
    src_neuron = 'Source neuron index',
    tgt_layer = 'Target neuron layer',
    tgt_neuron = 'Target neuron index',
    key_hash = 'Fingerprint of (src_layer, src_neuron, tgt_layer, tgt_neuron): edges finds a key''s partials by this one column',
    count = 'Link observations in the pass''s batches (not graphs)',
    weight_sum = 'Sum of weights',
    weight_abs_sum = 'Sum of |weight|',
    weight_sq_sum = 'Sum of weight^2',
    weight_min = 'Smallest weight',
    weight_max = 'Largest weight'
  )
);

with previous as (
  -- the batches this model holds, by pass: answered from the table's ledger, which lists every batch a pass
  -- took (alias and qualify: sqlglot binds unqualified columns to the outer table otherwise)
  select p.atlas, p.batch, p.seq
  from stg.edge_partials as p
),

new_batches as (
  -- graph batches this table does not hold yet, 64 a pass
  @new_batches('graphs')
),

pass as (
  @next_pass()
),

newest as (
  -- each atlas's newest batch in this pass: what the pass's rows are labelled with
  select atlas, max(batch) as batch
  from new_batches
  group by atlas
),

unit_links as (
  -- only links between two units of the atlas's unit kind (MLP neurons or transcoder features) make
  -- edges; embedding, logit, error and ambiguous links stay raw
  select
    l.atlas,
    l.src_layer,
    l.src_feature as src_neuron,
    l.tgt_layer,
    l.tgt_feature as tgt_neuron,
    l.weight
  from lake.graph_links as l
  semi join new_batches as n
    on l.atlas = n.atlas and l.batch = n.batch
  join lake.atlases as a
    on l.atlas = a.atlas and l.src_kind = a.unit and l.tgt_kind = a.unit
),

fresh as (
  -- one row per key of the pass: its batches are aggregated together (a fifth fewer rows than one per
  -- batch and key at 30M links, and one batch name per pass to write)
  select
    atlas,
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
  from unit_links
  group by atlas, src_layer, src_neuron, tgt_layer, tgt_neuron
)

select
  f.atlas,
  n.batch,
  pass.seq,
  f.src_layer,
  f.src_neuron,
  f.tgt_layer,
  f.tgt_neuron,
  -- the engine's hash of the key, kept in [0, 2^62) so it fits a signed bigint on every engine; keys may
  -- collide: edges then merges the other key again too, from all its partials, which changes nothing
  cast(hash(f.src_layer, f.src_neuron, f.tgt_layer, f.tgt_neuron) % 4611686018427387904 as bigint) as key_hash,
  f.count,
  f.weight_sum,
  f.weight_abs_sum,
  f.weight_sq_sum,
  f.weight_min,
  f.weight_max
from fresh as f
join newest as n
  on f.atlas = n.atlas
cross join pass
