-- Every LLM call of `circuitlake label`, committed batches only: outcome, tokens, latency.
MODEL (
  name lake.label_calls,
  kind VIEW,
  column_descriptions (
    atlas = 'Atlas',
    batch = 'Batch that landed the call',
    run = 'Labeling run (the source of its labels)',
    pass = 'output | input',
    layer = 'Neuron layer',
    neuron = 'Neuron index',
    model = 'LLM asked',
    template_hash = 'sha256 of the prompt template',
    attempt = 'Attempt number for this neuron and pass',
    outcome = 'ok | invalid | rate_limited | server_error | timeout | refused | error',
    tokens_in = 'Prompt tokens reported by the endpoint',
    tokens_out = 'Completion tokens reported by the endpoint',
    latency_ms = 'Wall time of the call',
    error = 'What went wrong (never a secret)',
    reply = 'Raw reply of an answer that did not validate',
    called_at = 'When the call was made'
  )
);

select *
from @committed_rows(label_calls)
