-- Every clustered neuron's path exists in clusters (standalone: it reads neurons and clusters).
AUDIT (name clusters_paths_exist, standalone true);

select n.atlas, n.layer, n.neuron, n.cluster_path
from main.neurons as n
where n.cluster_path is not null
  and not exists (
    select 1 from main.clusters as c
    where c.atlas = n.atlas and c.cluster_path = n.cluster_path
  )
