-- The size of a prefix equals the number of neurons under it, checked independently of the model:
-- a leaf row is exactly one neuron with that full path, and a module's size is the sum of its children's.
AUDIT (name clusters_size_equals_neurons_under_it);

with leaves as (
  select atlas, cluster_path, count(*) as neurons
  from main.neurons
  where cluster_path is not null
  group by atlas, cluster_path
),

children as (
  -- parent path = the path without its last component
  select
    c.atlas,
    left(c.cluster_path, length(c.cluster_path) - length(split_part(c.cluster_path, '.', c.level)) - 1) as parent_path,
    sum(c.size) as size
  from @this_model as c
  where c.level > 1
  group by 1, 2
),

expected as (
  -- a leaf row counts the neurons with exactly its path; a module sums its children
  -- (two plain equi-joins: one join with both, told apart in its ON clause, ran as a nested loop)
  select c.atlas, c.cluster_path, c.size, l.neurons as under_it
  from @this_model as c
  left join leaves as l
    on c.atlas = l.atlas and c.cluster_path = l.cluster_path
  where not c.is_module
  union all
  select c.atlas, c.cluster_path, c.size, ch.size as under_it
  from @this_model as c
  left join children as ch
    on c.atlas = ch.atlas and c.cluster_path = ch.parent_path
  where c.is_module
)

select atlas, cluster_path, size, under_it
from expected
where size <> coalesce(under_it, -1)
