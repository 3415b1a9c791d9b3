-- A path prefix appears once per atlas.
AUDIT (name clusters_unique_path);

select atlas, cluster_path, count(*) as copies
from @this_model
group by atlas, cluster_path
having count(*) > 1
