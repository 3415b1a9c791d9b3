-- layer_min <= median_layer <= layer_max for every prefix.
AUDIT (name clusters_median_within_layer_range);

select atlas, cluster_path, layer_min, median_layer, layer_max
from @this_model
where not (layer_min <= median_layer and median_layer <= layer_max)
