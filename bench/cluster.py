"""Clustering time and peak RSS at 1M and 10M generated links, 1 trial, next to Infomap's published figure."""

from __future__ import annotations

from pathlib import Path

from bench.measure import measure, table

STEP = """
import numpy as np, pyarrow as pa, time
from circuitlake.registry import ClusterSettings
from circuitlake.jobs.cluster import run_infomap
links, module_size = {links}, 100
nodes = links // 10
rng = np.random.default_rng(0)
src = rng.integers(0, nodes, links)
# planted structure: 80% of links stay inside the source's module of 100 nodes
inside = rng.random(links) < 0.8
tgt = np.where(inside, src // module_size * module_size + rng.integers(0, module_size, links), rng.integers(0, nodes, links))
keep = src != tgt
order = np.lexsort((tgt[keep], src[keep]))
table = pa.table({{"src": src[keep][order], "tgt": tgt[keep][order], "weight": rng.random(int(keep.sum()))[order] ** 2}})
t = time.perf_counter()
result, frame = run_infomap(table, ClusterSettings(trials=1, threads={threads}))
print(f"{{time.perf_counter() - t:.1f}} {{result.num_top_modules}} {{table.num_rows}} {{nodes}}")
"""


def run(work: Path, sizes=(1_000_000, 10_000_000), threads: int = 2) -> str:
    rows = []
    for links in sizes:
        m = measure(STEP.format(links=links, threads=threads))
        infomap_s, modules, n, nodes = m.output.strip().splitlines()[-1].split()
        rows.append([f"{int(n):,}", f"{int(nodes):,}", threads, 1, f"{m.seconds:.0f}", infomap_s, f"{m.peak_rss_mb:.0f}", modules])
    rows.append(["20,000,000 (Infomap's published figure)", "-", 8, 1, "-", "about 85", "about 3000", "-"])
    return (
        "## Clustering (Infomap)\n\n`jobs.cluster.run_infomap` (what `circuitlake cluster` runs: directed, multi-level, seed 42) "
        "on generated links with planted modules of 100 nodes (80% of links inside), 1 trial. Total seconds include "
        "generating the links and handing them to Infomap; peak RSS is the whole process.\n\n"
        + table(
            ["links", "nodes", "threads", "trials", "total s", "Infomap s (add links + run + result)", "peak RSS MB", "top modules"], rows
        )
        + "\n"
    )
