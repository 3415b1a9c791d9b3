-- |mean_weight| <= mean_abs_weight (with a relative tolerance for floating-point rounding).
AUDIT (name edges_mean_abs_bounds);

select atlas, method, src_layer, src_neuron, tgt_layer, tgt_neuron, mean_weight, mean_abs_weight
from @this_model
where abs(mean_weight) > mean_abs_weight + 1e-9 * greatest(1, mean_abs_weight)
