-- Per atlas, the top-level module sizes add up to the number of clustered neurons.
AUDIT (name clusters_top_sizes_sum_to_clustered_neurons, standalone true);

with top_sizes as (
  select atlas, sum(size) as total
  from main.clusters
  where level = 1
  group by atlas
),

clustered as (
  select atlas, count(*) as neurons
  from main.neurons
  where cluster_path is not null
  group by atlas
)

select coalesce(t.atlas, c.atlas) as atlas, t.total, c.neurons
from top_sizes as t
full outer join clustered as c
  on t.atlas = c.atlas
where coalesce(t.total, 0) <> coalesce(c.neurons, 0)
