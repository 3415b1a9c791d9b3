"""Lake layout at thousands of batches: one atlas's `graph_links` with N one-commit batches (the
(atlas, batch) partitions every ingest writes), timed as readers see it, before and after
`circuitlake maintain` (compaction and a Delta checkpoint). `python bench/run.py layout`
(batch counts: $BENCH_LAYOUT_BATCHES, default "300,3000")."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bench.measure import measure, table

WRITE = """
import sys; sys.path.insert(0, {repo!r})
import numpy as np, pyarrow as pa
from bench.scale_lake import ATLAS, _commit_markers, _marker, register
from circuitlake import lake
from circuitlake.settings import warehouse
from circuitlake.lake import new_batch_id, now
wh = warehouse({wh!r}); register(wh)
rng = np.random.default_rng(0)
for i in range({batches}):
    n, batch = 2000, new_batch_id("graphs")
    t = pa.table({{"atlas": [ATLAS] * n, "batch": [batch] * n, "graph_key": np.full(n, i), "src_kind": ["neuron"] * n,
                   "src_layer": rng.integers(0, 32, n).astype(np.int16), "src_feature": rng.integers(0, 25600, n), "src_pos": np.zeros(n, np.int32),
                   "tgt_kind": ["neuron"] * n, "tgt_layer": rng.integers(32, 64, n).astype(np.int16), "tgt_feature": rng.integers(0, 25600, n),
                   "tgt_pos": np.zeros(n, np.int32), "weight": rng.standard_normal(n)}})
    lake.append(wh, "graph_links", t)
    _commit_markers(wh, [_marker(batch, "graphs", None, now(), str(i), 1, {{"graph_links": n}})])
"""

READ = """
import sys, time, statistics; sys.path.insert(0, {repo!r})
import duckdb
from deltalake import DeltaTable
from circuitlake import duck
from circuitlake.settings import warehouse
wh = warehouse({wh!r}); duck.bootstrap("delta")
path = str(wh.table("graph_links"))
def timed(fn, runs=5):
    times = []
    for _ in range(runs):
        t = time.perf_counter(); fn(); times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)
batch = DeltaTable(path).to_pyarrow_table(columns=["batch"]).column("batch")[0].as_py()
con = duckdb.connect(); con.execute("load delta")
print(timed(lambda: DeltaTable(path).version()))
print(timed(lambda: len(DeltaTable(path).file_uris())))
print(timed(lambda: con.sql(f"select count(*) from delta_scan('{{path}}') where atlas = 'qwen-bench' and batch = '{{batch}}'").fetchall()))
print(timed(lambda: con.sql(f"select count(*) from delta_scan('{{path}}') where atlas = 'qwen-bench'").fetchall(), runs=3))
"""

MAINTAIN = """
import sys; sys.path.insert(0, {repo!r})
from circuitlake.app.maintain import maintain
from circuitlake.settings import warehouse
maintain(warehouse({wh!r}))
"""

STEPS = ["open table (Delta log replay)", "list files", "delta_scan one batch (count)", "delta_scan whole atlas (count)"]


def run(work: Path) -> str:
    repo = str(Path(__file__).resolve().parent.parent)
    shutil.rmtree(work, ignore_errors=True)
    rows = []
    for batches in (int(b) for b in os.environ.get("BENCH_LAYOUT_BATCHES", "300,3000").split(",")):
        wh = work / f"b{batches}"
        written = measure(WRITE.format(repo=repo, wh=str(wh), batches=batches))
        before = [float(x) for x in measure(READ.format(repo=repo, wh=str(wh))).output.split()[-4:]]
        maintained = measure(MAINTAIN.format(repo=repo, wh=str(wh)))
        after = [float(x) for x in measure(READ.format(repo=repo, wh=str(wh))).output.split()[-4:]]
        for step, b, a in zip(STEPS, before, after, strict=False):
            rows.append([f"{batches:,}", step, f"{b:.1f}", f"{a:.1f}", f"{b / a:.1f}x"])
        rows.append([f"{batches:,}", "(writing the batches, s / maintain, s)", f"{written.seconds:.0f}", f"{maintained.seconds:.1f}", "-"])
        shutil.rmtree(wh)
    return (
        "## Lake layout at thousands of batches\n\n"
        "One atlas's `graph_links`, N batches of 2,000 links, each its own Delta commit and (atlas, batch) partition "
        "(what N ingest batches write); median ms of what readers do, before and after `circuitlake maintain` "
        "(compaction per partition and a Delta checkpoint). A Qwen3-32B corpus is ~2,800 batches of 256 graphs.\n\n"
        + table(["batches", "step", "before maintain ms", "after maintain ms", "speed-up"], rows)
        + "\n"
    )
