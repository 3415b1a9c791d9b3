-- Every weight statistic is a finite number: one NaN or infinite link weight would poison its edge's sums for good.
AUDIT (name edges_statistics_are_finite);

@def(infinity, cast('Infinity' as double));

-- |x| < infinity holds for finite numbers only: NaN sorts above infinity in DuckDB and Spark alike
select atlas, method, src_layer, src_neuron, tgt_layer, tgt_neuron
from @this_model
where not (
  abs(weight_sum) < @infinity and abs(weight_abs_sum) < @infinity and abs(weight_sq_sum) < @infinity
  and abs(weight_min) < @infinity and abs(weight_max) < @infinity
  and abs(mean_weight) < @infinity and abs(mean_abs_weight) < @infinity
)
