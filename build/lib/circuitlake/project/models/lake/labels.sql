-- Current neuron labels: each label file source's latest committed batch, and every labeling-job batch.
MODEL (
  name lake.labels,
  kind VIEW,
  column_descriptions (
    atlas = 'Atlas',
    batch = 'Ingest batch (one label file)',
    source = 'Label source: the unit a newer file replaces',
    pass = 'output | input | autointerp | activation_pos | activation_neg',
    layer = 'Neuron layer',
    neuron = 'Neuron index',
    label = 'Label text as written by the labeler (may be empty)',
    short_label = 'Short label (enriched pass 1)',
    description = 'Longer description / function sentence',
    type = 'lexical | semantic | routing | formatting (output); combination | token-pattern | ... (input)',
    interpretability = 'low | medium | high',
    confidence = 'Labeler confidence',
    labeler_model = 'LLM that wrote the label, when known',
    max_activation = 'Largest activation the labeler saw',
    num_exemplars = 'Exemplars the labeler saw',
    output_norm = 'Norm of the neuron output direction, when the source carries it',
    source_file = 'File the label came from',
    record = 'Line or key inside the file'
  )
);

with current as (
  -- batch ids sort by time: the latest committed batch of a file source is its current version
  select atlas, source, max(batch) as batch
  from lake.ingest_batches
  where job = 'labels'
  group by atlas, source
  union all
  -- `circuitlake label` commits a run in many small batches: they accumulate
  select atlas, source, batch
  from lake.ingest_batches
  where job = 'label'
)

select l.*
from @lake_scan(labels) as l
semi join current as c
  on l.atlas = c.atlas and l.batch = c.batch
