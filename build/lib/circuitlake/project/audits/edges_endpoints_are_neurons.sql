-- Every edge endpoint is a neuron of its atlas. Standalone (it reads both edges and neurons), so SQLMesh
-- runs it non-blocking inside `plan`; `circuitlake audit` still fails on it.
AUDIT (name edges_endpoints_are_neurons, standalone true);

select e.atlas, e.method, e.src_layer, e.src_neuron, e.tgt_layer, e.tgt_neuron
from main.edges as e
where not exists (
  select 1 from main.neurons as s
  where s.atlas = e.atlas and s.layer = e.src_layer and s.neuron = e.src_neuron
)
or not exists (
  select 1 from main.neurons as t
  where t.atlas = e.atlas and t.layer = e.tgt_layer and t.neuron = e.tgt_neuron
)
