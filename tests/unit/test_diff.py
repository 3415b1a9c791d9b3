"""The adjusted mutual information `circuitlake diff` reports (jobs/diff.py), against scikit-learn's values
for the same labelings (adjusted_mutual_info_score, arithmetic normalisation) and its defining properties."""

from __future__ import annotations

import numpy as np
import pytest

from circuitlake.jobs.diff import adjusted_mutual_information as ami

# (labels a, labels b, scikit-learn 1.9.1's adjusted_mutual_info_score(a, b))
REFERENCE = [
    ([0, 0, 1, 1], [0, 0, 1, 1], 1.0),
    ([0, 0, 1, 1], [1, 1, 0, 0], 1.0),
    ([0, 0, 1, 2], [0, 0, 1, 1], 0.5714285714),
    ([0, 0, 0, 0], [0, 1, 2, 3], 0.0),
]


@pytest.mark.parametrize("a, b, expected", REFERENCE)
def test_known_values(a, b, expected):
    assert ami(np.array(a), np.array(b)) == pytest.approx(expected, abs=1e-9)


def test_agreement_up_to_renaming_is_one_and_chance_is_near_zero():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 30, 5000)
    renamed = (a * 7 + 3) % 31  # a bijection of the module numbers
    assert ami(a, renamed) == pytest.approx(1.0)
    assert abs(ami(a, rng.integers(0, 30, 5000))) < 0.01
    noisy = np.where(rng.random(5000) < 0.7, a, rng.integers(0, 30, 5000))
    assert 0.3 < ami(a, noisy) < 0.9
    assert ami(a, noisy) == pytest.approx(ami(noisy, a))  # symmetric
