"""The synthetic wiring cache (`circuitlake demo` without torch) has the shape computed wiring has."""

from __future__ import annotations

import json

from circuitlake.app.sample import SampleSpec, write_synthetic_wiring


def test_each_neuron_reaches_distinct_neurons_of_the_right_layers_with_one_polarity_each(tmp_path):
    spec = SampleSpec(graphs=1, layers=4, neurons_per_layer=8, seed=2)
    paths = write_synthetic_wiring(spec, tmp_path)
    assert [p.name for p in paths] == [f"layer_{i}.json" for i in range(spec.layers)]
    for layer, path in enumerate(paths):
        for entry in json.loads(path.read_text()).values():
            for direction, allowed in (("upstream", range(layer)), ("downstream", range(layer + 1, spec.layers))):
                if not allowed:
                    assert direction not in entry
                    continue
                both = entry[direction]["excitatory"] + entry[direction]["inhibitory"]
                targets = [(c["layer"], c["neuron"]) for c in both]
                # a pair has one polarity (the edges' unique key holds); 20 where the layers hold that many
                assert len(set(targets)) == len(targets) == min(20, len(allowed) * spec.neurons_per_layer)
                assert all(t[0] in allowed and 0 <= t[1] < spec.neurons_per_layer for t in targets)
                assert all(c["effective_strength"] > 0 for c in entry[direction]["excitatory"])
                assert all(c["effective_strength"] < 0 for c in entry[direction]["inhibitory"])
