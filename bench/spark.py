"""The same builds on the local DuckDB gateway and on the spark gateway (a local[2] session): the sample
atlas from scratch, after one more graph batch, and with nothing new. DuckDB is the baseline."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.measure import measure, table

SETUP = """
from pathlib import Path
from circuitlake import lake
from circuitlake.app.demo import run_demo
from circuitlake.app.sample import SampleSpec
from circuitlake.settings import warehouse
wh = warehouse({wh!r})
lake.ensure(wh)
assert run_demo(wh, Path({corpus!r}), Path({report!r}), SampleSpec(graphs={graphs}, min_nodes=120, max_nodes=200)) == 0
for leftover in (wh.duckdb, wh.state, wh.built_record):  # keep the lake (and its clustering run) only
    leftover.unlink()
"""

MORE = """
from circuitlake.app.sample import SAMPLE_ATLAS, SampleSpec, write_graphs
from circuitlake.ingest.graphs import ingest_graphs
from circuitlake.settings import warehouse
from pathlib import Path
write_graphs(SampleSpec(graphs={graphs}, min_nodes=120, max_nodes=200, seed=7), Path({out!r}))
ingest_graphs(warehouse({wh!r}), SAMPLE_ATLAS, [{out!r} + "/graphs"], workers=1)
"""

BUILD = """
import duckdb
from circuitlake import project
from circuitlake.app.build import build
from circuitlake.settings import warehouse
wh = warehouse({wh!r})
build(wh, cluster=False, gateway={gateway!r})
if {gateway!r} == "local":
    print(duckdb.connect(str(wh.duckdb), read_only=True).execute("select count(*) from edges").fetchone()[0])
else:
    ctx = project.context(wh, "spark")
    print(ctx.engine_adapter.fetchone("select count(*) from main.edges")[0])
    ctx.close()
"""


CONCLUSION = (
    "On one machine Spark is overhead: JVM start, task scheduling, and on an incremental build the lake views "
    "re-created and the `upsert_keys` tables rewritten (no row deletes on its Parquet tables). It is there for "
    "atlases that outgrow one machine, on a cluster; DuckDB stays the default."
)


def run(work: Path, graphs: int = 80, more_graphs: int = 10) -> str:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    wh = str(work / "warehouse")
    measure(SETUP.format(wh=wh, corpus=str(work / "corpus"), report=str(work / "report.md"), graphs=graphs))
    rows = []

    def both(step: str) -> None:
        local = measure(BUILD.format(wh=wh, gateway="local"))
        spark = measure(BUILD.format(wh=wh, gateway="spark"))
        edges = {m.output.strip().splitlines()[-1] for m in (local, spark)}
        rows.append(
            [
                step,
                f"{local.seconds:.0f}",
                f"{spark.seconds:.0f}",
                f"{spark.seconds / local.seconds:.1f}x",
                f"{local.peak_rss_mb:,.0f}",
                f"{spark.peak_rss_mb:,.0f}",
                " = ".join(sorted(edges)) if len(edges) == 1 else " != ".join(sorted(edges)),
            ]
        )

    both(f"first build ({graphs} graphs)")
    measure(MORE.format(graphs=more_graphs, out=str(work / "more"), wh=wh))
    both(f"+{more_graphs} graphs")
    both("nothing new")
    return (
        f"## The spark gateway\n\nA sample atlas ({graphs} graphs of 120-200 nodes, 8 x 512 neurons, labels, wiring, clusters) built from the same lake by "
        "`circuitlake build --gateway local` (DuckDB, the baseline) and `--gateway spark` (a local[2] Spark session, "
        "the lake read as each Delta table's active Parquet files), each step in a fresh process: wall seconds and "
        "peak RSS of the whole process tree (Spark's JVM included). Edges: both builds' `edges` row counts.\n\n"
        + table(["step", "DuckDB s", "Spark s", "Spark / DuckDB", "DuckDB peak RSS MB", "Spark peak RSS MB", "edges"], rows)
        + "\n\n"
        + CONCLUSION
        + "\n"
    )
