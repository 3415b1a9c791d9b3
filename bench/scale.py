"""Scale tiers: a Qwen-shaped lake written straight into Delta (bench/scale_lake.py), then per tier a full
build on a fresh warehouse, a no-op build, the lookups, a +1 batch and a +1% build; sizes on disk; the research
way's bytes per distinct edge; beside each full build, the one-query aggregate of the same links (the
floor). `python bench/run.py scale` (tiers: $BENCH_SCALE_TIERS, default "30,300"
million raw neuron links; the lake grows from tier to tier, so each tier only writes the difference).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

from bench.measure import measure, table

GROW = """
import sys; sys.path.insert(0, {repo!r})
from circuitlake.settings import warehouse
from bench import scale_lake
wh = warehouse({lake_wh!r}); scale_lake.register(wh)
if {labels!r}: scale_lake.write_labels(wh)
print(scale_lake.write_batches(wh, {batches}, seed={seed}))
"""

BUILD = """
import logging
from circuitlake.app.build import build
from circuitlake.settings import warehouse
import duckdb
logging.basicConfig(filename={log!r}, level=logging.INFO, format="%(asctime)s %(message)s")
wh = warehouse({wh!r})
build(wh, cluster=False)
con = duckdb.connect(str(wh.duckdb), read_only=True)
print(*con.sql("select (select count(*) from stg.edge_partials), (select count(*) from edges)").fetchone())
"""

FLOOR = """
import duckdb
from circuitlake import duck
from circuitlake.settings import budget, warehouse
wh = warehouse({wh!r})
con = duck.load(duckdb.connect(config=budget().duckdb_config(wh)), "delta")
# what the build's edges rest on, in one query: every neuron link aggregated by key (every sum used, so none is pruned)
links = duck.sql_string(wh.table("graph_links"))
print(con.sql(f'''
    select count(*) filter (where n >= 3), sum(s) + sum(a) + sum(q) + min(lo) + max(hi)
    from (
        select src_layer, src_feature, tgt_layer, tgt_feature, count(*) as n, sum(weight) as s, sum(abs(weight)) as a,
               sum(weight * weight) as q, min(weight) as lo, max(weight) as hi
        from delta_scan({{links}})
        where src_kind = 'neuron' and tgt_kind = 'neuron'
        group by all
    )''').fetchone()[0])
"""

DISTINCT = """
import duckdb
con = duckdb.connect({db!r}, read_only=True)
print(con.sql("select approx_count_distinct(hash(src_layer, src_neuron, tgt_layer, tgt_neuron)) from stg.edge_partials").fetchone()[0])
"""

CLUSTER = """
from circuitlake.app.build import refresh_clusters
from circuitlake.settings import warehouse
from circuitlake.jobs.cluster import cluster
wh = warehouse({wh!r})
run = cluster(wh, "qwen-bench", force=True)
refresh_clusters(wh)
print(run["edges"], run["neurons"], run["top_modules"], f"{{run['seconds']:.0f}}")
"""

LOOKUPS = """
import statistics, time, duckdb
con = duckdb.connect({db!r}, read_only=True)
a = "qwen-bench"
hot = con.sql("select src_layer, src_neuron from edges group by all order by count(*) desc limit 1").fetchone()
hot_t = con.sql("select tgt_layer, tgt_neuron from edges_by_target group by all order by count(*) desc limit 1").fetchone()
queries = {{
    "downstream (src neuron's 20 strongest)": f"select tgt_layer, tgt_neuron, mean_abs_weight from edges where atlas = '{{a}}' and src_layer = {{hot[0]}} and src_neuron = {{hot[1]}} order by mean_abs_weight desc limit 20",
    "upstream (tgt neuron's 20 strongest)": f"select src_layer, src_neuron, mean_abs_weight from edges_by_target where atlas = '{{a}}' and tgt_layer = {{hot_t[0]}} and tgt_neuron = {{hot_t[1]}} order by mean_abs_weight desc limit 20",
    "strongest edges of a layer": f"select * from edges where atlas = '{{a}}' and src_layer = 31 order by mean_abs_weight desc limit 20",
    "label search (ILIKE '%aspirin%')": "select layer, neuron, label, top_cluster from neurons where label ilike '%aspirin%'",
}}
# the ARTIFACTS.md example queries (list(... limit 3) written as the slice [1:3], which DuckDB 1.5 parses), on the circuit (top_cluster, sub_module) with the most neurons
top, sub = con.sql("select top_cluster, sub_module from neurons where sub_module is not null group by all order by count(*) desc limit 1").fetchone()
queries.update({{
    "ARTIFACTS: neurons in a circuit": f"select layer, neuron, label from neurons where top_cluster = {{top}} and sub_module = {{sub}}",
    "ARTIFACTS: top clusters by size with sample labels": '''
        select top_cluster, count(*) as n, list(label order by max_activation desc nulls last)[1:3]
        from neurons where top_cluster is not null group by top_cluster order by n desc limit 20''',
    "ARTIFACTS: edges within a circuit": f'''
        select e.src_layer, e.src_neuron, e.tgt_layer, e.tgt_neuron, e.mean_weight, n1.label as src_label, n2.label as tgt_label
        from edges e
        join neurons n1 on e.src_layer = n1.layer and e.src_neuron = n1.neuron
        join neurons n2 on e.tgt_layer = n2.layer and e.tgt_neuron = n2.neuron
        where n1.top_cluster = {{top}} and n1.sub_module = {{sub}} and n2.top_cluster = {{top}} and n2.sub_module = {{sub}}
        order by e.mean_abs_weight desc''',
}})
for name, sql in queries.items():
    times = []
    for _ in range(20):
        t = time.perf_counter(); con.sql(sql).fetchall(); times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(f"{{name}}\\t{{statistics.median(times):.1f}}\\t{{times[18]:.1f}}")
"""

RESEARCH = """
import random, tracemalloc
tracemalloc.start()
edges = {{}}
for i in range({n}):
    w = random.random()
    edges[(random.randrange(64), random.randrange(25600), random.randrange(64), i)] = [1, w, abs(w), w * w, w, w]
print(tracemalloc.get_traced_memory()[0] / {n})
"""

LINKS_PER_BATCH = 728_000  # measured mean of scale_lake batches (256 graphs x ~2,850 kept links)


STEP = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) (Evaluating|Pushing intervals for) snapshot SnapshotId<"\w+"\."(\w+)"\."(\w+)"')


def steps(log: Path, top: int = 3) -> str:
    """The slowest models of a build from its SQLMesh log: seconds from a model's evaluation to its
    intervals being recorded (its audits included; models evaluated at the same time overlap)."""
    started: dict[str, datetime] = {}
    spent: dict[str, float] = {}
    for line in log.read_text().splitlines():
        if m := STEP.match(line):
            at, name = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f"), f"{m[3]}.{m[4]}"
            if m[2] == "Evaluating":
                started[name] = at
            elif name in started:
                spent[name] = spent.get(name, 0) + (at - started.pop(name)).total_seconds()
    slowest = sorted(spent.items(), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{n.split('.')[-1]} {s:.0f}" for n, s in slowest)


CLUSTER_HEADER = ["tier", "links", "neurons", "top modules", "Infomap s", "total s", "peak GiB"]
CLUSTER_TEXT = (
    "One Infomap trial per tier (`circuitlake cluster` with trials = 1, {cores} threads, RelP edges with count >= 5 "
    "between neurons with more than one such edge), then the restatement that brings it into neurons and clusters; "
    "total s and peak cover both"
)


def cluster_and_look_up(wh: Path, tier: str) -> tuple[list, list[list]]:
    """One Infomap trial on a built tier (its row), then the lookups and the ARTIFACTS.md queries (their rows)."""
    clustered = measure(CLUSTER.format(wh=str(wh)))
    links, neurons, modules, infomap_s = clustered.output.split()[-4:]
    row = [
        tier,
        f"{int(links) / 1e6:.2f}M",
        f"{int(neurons):,}",
        modules,
        infomap_s,
        f"{clustered.seconds:.0f}",
        f"{clustered.peak_rss_mb / 1024:.2f}",
    ]
    lookups = []
    for line in measure(LOOKUPS.format(db=str(wh / "circuitlake.duckdb"))).output.strip().splitlines()[-7:]:
        name, median, p95 = line.split("\t")
        lookups.append([tier, name, median, p95])
    return row, lookups


def run_top(work: Path) -> str:
    """`python bench/run.py scale-top` with $BENCH_SCALE_WAREHOUSE (a tier built by `scale`, e.g.
    bench/work/scale/tier-1000M) and $BENCH_SCALE_TIER (its name): its no-op build, one Infomap trial
    and the lookups with the ARTIFACTS.md queries, without building it again."""
    wh, tier = Path(os.environ["BENCH_SCALE_WAREHOUSE"]), os.environ.get("BENCH_SCALE_TIER", "top")
    noop = measure(BUILD.format(wh=str(wh), log=str(work.parent / f"{tier}-top-noop.log")))
    clustered, lookups = cluster_and_look_up(wh, tier)
    return (
        f"## Scale: the {tier} tier's clustering and queries\n\n"
        f"On the warehouse the `scale` section built for this tier (lake {du(wh / 'lake'):.1f} GiB, warehouse "
        f"{du(wh / 'circuitlake.duckdb'):.1f} GiB); no-op build first: {noop.seconds:.1f} s, peak {noop.peak_rss_mb / 1024:.2f} GiB. "
        + CLUSTER_TEXT.format(cores=os.cpu_count())
        + ":\n\n"
        + table(CLUSTER_HEADER, [clustered])
        + "\n\nLookups and the ARTIFACTS.md example queries (ms over 20 runs, read-only DuckDB connection; "
        "the circuit queries use the (top_cluster, sub_module) with the most neurons):\n\n"
        + table(["tier", "query", "median ms", "p95 ms"], lookups)
        + "\n"
    )


def du(path: Path) -> float:
    out = subprocess.run(["du", "-sbL", str(path)], capture_output=True, text=True).stdout.split()
    return int(out[0]) / 2**30 if out else 0.0


def run(work: Path) -> str:
    repo = str(Path(__file__).resolve().parent.parent)
    tiers = [int(t) for t in os.environ.get("BENCH_SCALE_TIERS", "30,300").split(",")]
    lake_wh = work / "lake-warehouse"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rows, lookups, slowest, clusters, have, seed = [], [], [], [], 0, 1
    for tier in tiers:
        batches = math.ceil(tier * 1e6 / LINKS_PER_BATCH) - have
        grow = measure(GROW.format(repo=repo, lake_wh=str(lake_wh), labels=have == 0, batches=batches, seed=seed))
        have, seed = have + batches, seed + 1
        links = have * LINKS_PER_BATCH
        wh = work / f"tier-{tier}M"
        wh.mkdir()
        (wh / "lake").symlink_to(lake_wh / "lake")
        # the floor first, while the warehouse is empty: at 1B its spill needs the disk the warehouse takes later
        free = shutil.disk_usage(wh).free / 2**30
        try:
            floor = measure(FLOOR.format(wh=str(wh)))
        except RuntimeError as e:  # e.g. its spill filled the disk: the row says so, the build still runs
            floor, why = None, str(e).strip().splitlines()[-1]
            floor_failed = f"failed: its spill filled the {free:.0f} GiB free" if "No space left" in why else f"failed: {why[:100]}"
        shutil.rmtree(wh / ".spill", ignore_errors=True)
        try:
            full = measure(BUILD.format(wh=str(wh), log=str(work / f"{tier}M-full.log")))
        except RuntimeError as e:  # e.g. the disk filled up: the row says so, the tiers before it stand
            rows.append(
                [
                    f"{tier}M",
                    f"{links / 1e6:.0f}M",
                    "-",
                    "-",
                    "-",
                    f"{du(lake_wh / 'lake'):.1f}",
                    f"{du(wh):.1f}",
                    f"{grow.seconds:.0f}",
                    f"failed: {str(e).strip().splitlines()[-1][:120]}",
                ]
                + ["-"] * 8
            )
            shutil.rmtree(wh)
            break
        partials, edges = full.output.split()[-2:]
        if floor:
            assert floor.output.split()[-1] == edges, (floor.output, edges)  # the floor's edge count is the build's
        distinct = int(measure(DISTINCT.format(db=str(wh / "circuitlake.duckdb"))).output.split()[-1])
        noop = measure(BUILD.format(wh=str(wh), log=str(work / f"{tier}M-noop.log")))
        size_wh = du(wh / "circuitlake.duckdb")
        clustered, looked_up = cluster_and_look_up(wh, f"{tier}M")
        clusters.append(clustered)
        lookups += looked_up
        measure(GROW.format(repo=repo, lake_wh=str(lake_wh), labels=False, batches=1, seed=seed))
        have, seed = have + 1, seed + 1
        one = measure(BUILD.format(wh=str(wh), log=str(work / f"{tier}M-one.log")))
        more = max(1, round(have * 0.01))
        measure(GROW.format(repo=repo, lake_wh=str(lake_wh), labels=False, batches=more, seed=seed))
        have, seed = have + more, seed + 1
        plus = measure(BUILD.format(wh=str(wh), log=str(work / f"{tier}M-plus.log")))
        slowest.append([f"{tier}M", steps(work / f"{tier}M-full.log"), steps(work / f"{tier}M-plus.log")])
        rows.append(
            [
                f"{tier}M",
                f"{links / 1e6:.0f}M",
                f"{int(partials) / 1e6:.1f}M",
                f"{distinct / 1e6:.1f}M",
                f"{int(edges) / 1e6:.2f}M",
                f"{du(lake_wh / 'lake'):.1f}",
                f"{size_wh:.1f}",
                f"{grow.seconds:.0f}",
                f"{full.seconds:.0f}",
                f"{full.peak_rss_mb / 1024:.2f}",
                f"{floor.seconds:.0f} ({full.seconds / floor.seconds:.1f}x)" if floor else floor_failed,
                f"{floor.peak_rss_mb / 1024:.2f}" if floor else "-",
                f"{noop.seconds:.1f}",
                f"{noop.peak_rss_mb / 1024:.2f}",
                f"{one.seconds:.1f}",
                f"{plus.seconds:.0f} ({plus.seconds / full.seconds:.1%})",
                f"{plus.peak_rss_mb / 1024:.2f}",
            ]
        )
        shutil.rmtree(wh)
    per_edge = float(measure(RESEARCH.format(n=2_000_000)).output.strip().splitlines()[-1])
    fits = 24 * 2**30 / per_edge
    return (
        "## Scale tiers (Qwen-shaped lake, written straight into Delta)\n\n"
        f"64 x 25,600 neurons, 256-graph batches of ~300 neuron nodes and ~2,850 neuron links per graph; "
        f"{os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM; "
        f"DuckDB budget {os.environ.get('CIRCUITLAKE_MEMORY', '5GB')}. Peak RSS covers the whole process tree "
        "(SQLMesh and DuckDB in one process). Each tier's lake is the previous tier's plus new batches; every "
        "full build starts from an empty warehouse. The floor, measured just before it, is one DuckDB query over the same lake that "
        "aggregates every neuron link by key (count, sum, sum of abs, sum of squares, min, max; the edges with "
        "count >= 3 counted, which must equal the build's), with the build's memory budget. The +1 batch build adds "
        "one batch (256 graphs) and builds the same warehouse again; the +1% build then adds 1% more batches; "
        "its share is of the full build.\n\n"
        + table(
            [
                "tier",
                "raw neuron links",
                "partial rows",
                "distinct edges (approx.)",
                "edges (count >= 3)",
                "lake GiB",
                "warehouse GiB",
                "lake written s",
                "full build s",
                "full peak GiB",
                "floor s (full / floor)",
                "floor peak GiB",
                "no-op s",
                "no-op peak GiB",
                "+1 batch s",
                "+1% build s",
                "+1% peak GiB",
            ],
            rows,
        )
        + "\n\nSlowest models per build (seconds, audits included, from the SQLMesh log):\n\n"
        + table(["tier", "full build", "+1% build"], slowest)
        + "\n\n"
        + CLUSTER_TEXT.format(cores=os.cpu_count())
        + ":\n\n"
        + table(CLUSTER_HEADER, clusters)
        + "\n\nLookups (ms over 20 runs, read-only DuckDB connection to the warehouse file):\n\n"
        + table(["tier", "query", "median ms", "p95 ms"], lookups)
        + f"\n\nThe research way (a Python dict of [count, sum, abs, sq, min, max] per distinct edge) holds "
        f"{per_edge:.0f} bytes per distinct edge (tracemalloc, 2M edges): 24 GiB stops fitting at "
        f"{fits / 1e6:.0f}M distinct edges; Qwen3-32B has ~500M (~{500e6 * per_edge / 2**30:.0f} GiB).\n"
    )
