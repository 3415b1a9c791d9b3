"""CLI start and the fixed cost of a small build: `circuitlake --help` against the same process importing
every command's modules up front (what the CLI did before it imported lazily), and a small atlas's first
and no-op builds as `circuitlake build` runs them (no plan tests, no linter, one SQLMesh context for the
cluster refresh) against plans that also run the SQLMesh unit tests and the linter, as a bare `sqlmesh plan` does."""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.measure import measure

EAGER = """
import circuitlake.app.cli
import circuitlake.app.build, circuitlake.app.demo, circuitlake.app.explore, circuitlake.app.html_report
import circuitlake.app.maintain, circuitlake.app.report, circuitlake.app.sample, circuitlake.app.scaffold, circuitlake.app.status
import circuitlake.atlas, circuitlake.ingest.graphs, circuitlake.ingest.labels, circuitlake.ingest.wiring
import circuitlake.jobs.cluster, circuitlake.jobs.embed, circuitlake.jobs.export, circuitlake.jobs.label
import circuitlake.jobs.maintain, circuitlake.jobs.retract
"""
HELP = """
import sys
sys.argv = ["circuitlake", "--help"]
from circuitlake.app.cli import app
try:
    app()
except SystemExit:
    pass
"""
BUILDS = """
import time
from pathlib import Path
from circuitlake import registry
from circuitlake.app import build as b
from circuitlake.app.sample import SampleSpec, write_graphs
from circuitlake.ingest.graphs import ingest_graphs
from circuitlake.settings import warehouse
work = Path({work!r})
spec = SampleSpec(graphs=24, min_nodes=60, max_nodes=120, seed=3)
write_graphs(spec, work / "corpus")
if {baseline}:
    b.APPLY.update(skip_tests=False, skip_linter=False)
    real = b.refresh_clusters
    b.refresh_clusters = lambda wh, ctx=None: real(wh)  # a fresh SQLMesh context, as before
    b._nothing_new = lambda *a: False  # a build with nothing new loads SQLMesh and plans, as before
wh = warehouse(work / "wh")
registry.add(wh, registry.record(atlas="small", model_id="t", num_layers=spec.layers, neurons_per_layer=spec.neurons_per_layer))
ingest_graphs(wh, "small", [str(work / "corpus" / "graphs")], show_progress=False)
t = time.perf_counter(); b.build(wh); first = time.perf_counter() - t
t = time.perf_counter(); b.build(wh); noop = time.perf_counter() - t
print(first, noop)
"""

COMMAND = """
import sys
sys.argv = ["circuitlake", "--warehouse", {wh!r}, "build"]
if {baseline}:
    import circuitlake.app.build as b
    b._nothing_new = lambda *a: False
from circuitlake.app.cli import run
run()
"""


def _median_seconds(code: str, runs: int) -> float:
    return statistics.median(measure(code).seconds for _ in range(runs))


def run(work: Path, runs: int = 7) -> str:
    work.mkdir(parents=True, exist_ok=True)
    lazy, eager = _median_seconds(HELP, runs), _median_seconds(EAGER + HELP, runs)
    rows = [f"| `circuitlake --help` (median of {runs}) | {lazy:.2f} s | {eager:.2f} s | {eager / lazy:.1f}x |"]
    timings = {}
    for baseline in (False, True):
        folder = work / ("baseline" if baseline else "build")
        timings[baseline] = tuple(map(float, measure(BUILDS.format(work=str(folder), baseline=baseline)).output.split()[-2:]))
    for i, what in enumerate(("first build of a 24-graph atlas", "build with nothing new")):
        now, before = timings[False][i], timings[True][i]
        rows.append(f"| {what} | {now:.1f} s | {before:.1f} s | {before / now:.2f}x |")
    command = {}
    for baseline in (False, True):  # the command as a user runs it: a process, its imports, the build with nothing new
        wh = work / ("baseline" if baseline else "build") / "wh"
        command[baseline] = _median_seconds(COMMAND.format(wh=str(wh), baseline=baseline), runs)
    rows.append(
        f"| `circuitlake build` with nothing new (the process, median of {runs}) | {command[False]:.2f} s | "
        f"{command[True]:.2f} s | {command[True] / command[False]:.1f}x |"
    )
    return (
        "## CLI start and a build's fixed cost\n\n"
        "Baselines in the same run: the CLI importing every command's modules up front (as before), and plans that\n"
        "also run the SQLMesh unit tests and linter with a second SQLMesh context for the cluster refresh, a build\n"
        "with nothing new loading SQLMesh and planning (as before).\n\n"
        "| what | now | baseline | speed-up |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
