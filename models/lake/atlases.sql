-- The atlas registry: model shape, neuron universe and thresholds per atlas, as data.
MODEL (
  name lake.atlases,
  kind VIEW,
  column_descriptions (
    atlas = 'Atlas name, e.g. qwen3-32b',
    model_id = 'Hugging Face model id',
    num_layers = 'MLP layers of the model',
    neurons_per_layer = 'Units per layer: MLP neurons (d_ffn) or transcoder features',
    universe = 'grid: every neuron of the model; observed: neurons in graphs or wiring',
    min_label_coverage = 'Label coverage the audit requires (null: reported only)',
    relp_min_count = 'RelP edges publish at count >= this',
    settings = 'JSON: label precedence and clustering settings',
    registered_at = 'When the atlas was registered or last updated',
    unit = 'What graph nodes count as units: neuron (MLP neurons) or transcoder (transcoder features)'
  )
);

select
  atlas,
  model_id,
  num_layers,
  neurons_per_layer,
  universe,
  min_label_coverage,
  relp_min_count,
  settings,
  registered_at,
  unit
from @lake_scan(atlases)
