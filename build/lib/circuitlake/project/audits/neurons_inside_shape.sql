-- Every neuron lies inside its atlas's model shape: 0 <= layer < num_layers, 0 <= neuron < neurons_per_layer.
AUDIT (name neurons_inside_shape);

select n.atlas, n.layer, n.neuron, a.num_layers, a.neurons_per_layer
from @this_model as n
join lake.atlases as a
  on n.atlas = a.atlas
where n.layer < 0 or n.layer >= a.num_layers
   or n.neuron < 0 or n.neuron >= a.neurons_per_layer
