-- A neuron appears once per (atlas, layer, neuron).
AUDIT (name neurons_unique_key);

select atlas, layer, neuron, count(*) as copies
from @this_model
group by atlas, layer, neuron
having count(*) > 1
