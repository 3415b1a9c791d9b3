-- Every current label of every unit, with its provenance, sorted by unit: what a neuron card lists.
MODEL (
  name main.labels_by_neuron,
  kind FULL,
  tags (reads_lake),
  grain (atlas, layer, neuron, source, pass, batch, record),
  columns (
    atlas text,
    layer smallint,
    neuron bigint,
    source text,
    pass text,
    label text,
    short_label text,
    description text,
    type text,
    interpretability text,
    labeler_model text,
    source_file text,
    batch text,
    record text
  ),
  column_descriptions (
    atlas = 'Atlas',
    layer = 'Unit layer',
    neuron = 'Unit index inside the layer',
    source = 'Label source (lake.labels.source)',
    pass = 'output | input | autointerp | activation_pos | activation_neg',
    label = 'Label text as written by the labeler (may be empty)',
    short_label = 'Short label (enriched pass 1)',
    description = 'Longer description / function sentence',
    type = 'Label type as the labeler gave it',
    interpretability = 'low | medium | high',
    labeler_model = 'LLM that wrote the label, when known',
    source_file = 'File the label came from',
    batch = 'Ingest batch that landed it',
    record = 'Line or key inside the file'
  )
);

with labels as (
  -- lake.labels holds the current labels only: each file source's latest batch, every labeling-job batch
  select * from lake.labels
),

worded as (
  -- a row with no text in any field is not a label
  select
    atlas,
    cast(layer as smallint) as layer,
    cast(neuron as bigint) as neuron,
    source,
    pass,
    label,
    short_label,
    description,
    type,
    interpretability,
    labeler_model,
    source_file,
    batch,
    record
  from labels
  where label <> '' or short_label <> '' or description <> ''
)

-- sorted by unit: one unit's labels sit in one narrow row-group range (DuckDB zone maps)
select *
from worded
order by atlas, layer, neuron, source, pass
