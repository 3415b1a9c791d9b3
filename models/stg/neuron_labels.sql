-- One row per labeled neuron: label columns picked by the atlas's label precedence, plus labeler figures.
MODEL (
  name stg.neuron_labels,
  kind FULL,
  tags (reads_lake),
  grain (atlas, layer, neuron),
  column_descriptions (
    atlas = 'Atlas',
    layer = 'Neuron layer',
    neuron = 'Neuron index',
    label = 'Best non-empty value for neurons.label (lake.labels, or a graph clerp where precedence allows)',
    output_label = 'Best non-empty value for neurons.output_label',
    input_label = 'Best non-empty value for neurons.input_label',
    description = 'Best non-empty value for neurons.description',
    max_activation = 'Largest max_activation over the neuron''s labels',
    num_exemplars = 'Largest num_exemplars over the neuron''s labels',
    output_norm = 'Largest output_norm over the neuron''s labels'
  )
);

with labels as (
  select * from lake.labels
),

label_values as (
  -- one row per (label row, field) so precedence can name any field
  select atlas, layer, neuron, source, pass, batch, record, 'label' as field, label as value from labels
  union all
  select atlas, layer, neuron, source, pass, batch, record, 'short_label' as field, short_label as value from labels
  union all
  select atlas, layer, neuron, source, pass, batch, record, 'description' as field, description as value from labels
  union all
  -- graphs' display labels: pass clerp (the default precedence uses them only where nothing else labels the unit)
  select atlas, layer, neuron, 'graphs' as source, 'clerp' as pass, batch, '' as record, 'label' as field, clerp as value
  from stg.clerp_labels
),

candidates as (
  select v.atlas, v.layer, v.neuron, r.column_name, r.rank, v.source, v.batch, v.record, v.value
  from label_values as v
  join lake.label_precedence as r
    on v.atlas = r.atlas and v.pass = r.pass and v.field = r.field
   and (r.source is null or r.source = v.source)
  -- an empty string is not a label
  where v.value is not null and trim(v.value) <> ''
),

ranked as (
  -- label precedence: lowest rank wins; ties go to the newest batch, then the source name, then the record
  select
    *,
    row_number() over (
      partition by atlas, layer, neuron, column_name order by rank, batch desc, source, record
    ) as pick
  from candidates
),

picked as (
  select
    atlas,
    layer,
    neuron,
    max(case when column_name = 'label' then value end) as label,
    max(case when column_name = 'output_label' then value end) as output_label,
    max(case when column_name = 'input_label' then value end) as input_label,
    max(case when column_name = 'description' then value end) as description
  from ranked
  where pick = 1
  group by atlas, layer, neuron
),

figures as (
  select
    atlas,
    layer,
    neuron,
    max(max_activation) as max_activation,
    max(num_exemplars) as num_exemplars,
    max(output_norm) as output_norm
  from labels
  group by atlas, layer, neuron
)

select
  -- a unit labeled only by graphs' clerps has no labels row, hence no figures
  coalesce(f.atlas, p.atlas) as atlas,
  coalesce(f.layer, p.layer) as layer,
  coalesce(f.neuron, p.neuron) as neuron,
  p.label,
  p.output_label,
  p.input_label,
  p.description,
  f.max_activation,
  f.num_exemplars,
  f.output_norm
from figures as f
full outer join picked as p
  on f.atlas = p.atlas and f.layer = p.layer and f.neuron = p.neuron
