-- A neuron outside the clustering (no cluster_path) has no cluster columns; a clustered one has all of them.
AUDIT (name neurons_unclustered_have_no_cluster_columns);

select atlas, layer, neuron, cluster_path, top_cluster, hierarchy_depth, infomap_flow
from @this_model
where (cluster_path is null
       and (top_cluster is not null or sub_module is not null or subsub_module is not null
            or hierarchy_depth is not null or infomap_flow is not null))
   or (cluster_path is not null
       and (top_cluster is null or hierarchy_depth is null or infomap_flow is null))
