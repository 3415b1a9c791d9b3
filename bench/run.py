"""Benchmark harness: `python bench/run.py [section ...]` measures, prints and commits bench/RESULTS.md.

Each section is measured against a baseline in the same run; its table is kept in
bench/results/<section>.md so sections can be re-run alone, and RESULTS.md joins them.
"""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench import cli_start, cluster, explorer, graphs, huge_graph, labels, layout, scale, search, spark, stress, wiring  # noqa: E402

SECTIONS = {
    "graphs": graphs.run,
    "huge-graph": huge_graph.run,
    "labels": labels.run,
    "wiring": wiring.run,
    "cluster": cluster.run,
    "scale": scale.run,
    "scale-top": scale.run_top,  # on a tier `scale` built: only when asked for
    "layout": layout.run,
    "search": search.run,
    "spark": spark.run,  # needs `make spark`
    "stress": stress.run,
    "cli": cli_start.run,
    "explorer": explorer.run,  # $BENCH_EXPLORER_TIER million links (default 30)  # `make test-stress`: STRESS_ROUNDS rounds of kill -9
}


def main(argv: list[str]) -> None:
    chosen = argv or [s for s in SECTIONS if s != "scale-top"]
    work = HERE / "work"
    work.mkdir(exist_ok=True)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    for name in chosen:
        text = SECTIONS[name](work / name)
        stamp = f"\n_Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}._\n"
        (results / f"{name}.md").write_text(text + stamp)
        print(text + stamp)
    parts = [(results / f"{n}.md").read_text() for n in SECTIONS if (results / f"{n}.md").exists()]
    (HERE / "RESULTS.md").write_text("# Benchmark results\n\nMade by `make bench` (`python bench/run.py`).\n\n" + "\n".join(parts))


if __name__ == "__main__":
    main(sys.argv[1:])
