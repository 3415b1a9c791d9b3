"""The short stress run (`make test-stress` runs the long one into bench/RESULTS.md): concurrent writing
commands killed with SIGKILL at random points and run again, each round's warehouse equal to a clean one."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stress import stress  # noqa: E402


def test_concurrent_writers_killed_at_random_lose_nothing(tmp_path):
    # seed 14: a build (seconds long at least) is killed 1.8 s in while labels land beside it; a quicker
    # victim (maintain on a new lake) may end before its kill, and the round would prove nothing
    tally = stress(tmp_path, rounds=1, seed=14)
    assert tally.rounds == 1 and tally.kills >= 1
    assert tally.losses == []
