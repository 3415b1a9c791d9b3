-- An edge appears once per (atlas, method, source neuron, target neuron).
AUDIT (name edges_unique_key);

select atlas, method, src_layer, src_neuron, tgt_layer, tgt_neuron, count(*) as copies
from @this_model
group by atlas, method, src_layer, src_neuron, tgt_layer, tgt_neuron
having count(*) > 1
