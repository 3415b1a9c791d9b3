-- No published RelP edge is seen fewer times than its atlas's relp_min_count (research: count >= 3).
AUDIT (name edges_below_threshold);

select e.atlas, e.src_layer, e.src_neuron, e.tgt_layer, e.tgt_neuron, e.count, a.relp_min_count
from @this_model as e
join lake.atlases as a
  on e.atlas = a.atlas
where e.method = 'relp'
  and e.count < a.relp_min_count
