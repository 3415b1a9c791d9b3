-- Every edge goes from an earlier layer to a later one (src_layer < tgt_layer).
AUDIT (name edges_layer_order);

select atlas, method, src_layer, src_neuron, tgt_layer, tgt_neuron
from @this_model
where src_layer >= tgt_layer
