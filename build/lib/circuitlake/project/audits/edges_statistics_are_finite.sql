-- Every weight statistic is a finite number: one NaN or infinite link weight would poison its edge's sums for good.
AUDIT (name edges_statistics_are_finite);

select atlas, method, src_layer, src_neuron, tgt_layer, tgt_neuron
from @this_model
where not (isfinite(weight_sum) and isfinite(weight_abs_sum) and isfinite(weight_sq_sum)
           and isfinite(weight_min) and isfinite(weight_max) and isfinite(mean_weight) and isfinite(mean_abs_weight))
