-- weight_min <= mean_weight <= weight_max (with a relative tolerance for floating-point rounding).
AUDIT (name edges_mean_within_range);

select atlas, method, src_layer, src_neuron, tgt_layer, tgt_neuron, weight_min, mean_weight, weight_max
from @this_model
where mean_weight < weight_min - 1e-9 * greatest(1, abs(weight_min))
   or mean_weight > weight_max + 1e-9 * greatest(1, abs(weight_max))
