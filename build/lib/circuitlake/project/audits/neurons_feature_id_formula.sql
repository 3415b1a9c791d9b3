-- feature_id = layer * neurons_per_layer + neuron.
AUDIT (name neurons_feature_id_formula);

select n.atlas, n.layer, n.neuron, n.feature_id
from @this_model as n
join lake.atlases as a
  on n.atlas = a.atlas
where n.feature_id <> cast(n.layer as bigint) * a.neurons_per_layer + n.neuron
