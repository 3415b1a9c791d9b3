"""The explorer's pages at a scale tier: a Qwen-shaped lake (bench/scale_lake.py: 64 x 25,600 neurons, a
label for 97.9% of them) built, clustered (one Infomap trial) and indexed, then `circuitlake serve` asked
for each page and its JSON over HTTP (median and p95 of RUNS warm requests). Baselines in the same run:
the same answer read in-process through the explorer's reads (no HTTP, no HTML: the floor), and the CLI
command that answered it before (`circuitlake neuron` / `search`: a process per question).
`$BENCH_EXPLORER_TIER`: million raw neuron links (default 30; the scale section's tiers are 30, 300, 1000).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from bench.measure import measure, table

RUNS = 15
SETUP = """
import sys; sys.path.insert(0, {repo!r})
from bench import scale_lake
from circuitlake.app.build import build, refresh_clusters
from circuitlake.jobs.cluster import cluster
from circuitlake.settings import warehouse
wh = warehouse({wh!r})
scale_lake.register(wh)
scale_lake.write_labels(wh)
scale_lake.write_batches(wh, {batches}, seed=1)
build(wh, cluster=False)
cluster(wh, scale_lake.ATLAS, force=True)
refresh_clusters(wh)
"""
TARGETS = """
import json
from circuitlake import duck
from circuitlake.settings import warehouse
con = duck.load(duck.connect(warehouse({wh!r}), read_only=True), "delta")
links = con.sql("select count(*) from lake.graph_links").fetchone()[0]
hot = con.sql("select layer, neuron from neurons order by appearance_count desc, layer, neuron limit 1").fetchone()
calm = con.sql("select layer, neuron from neurons where label is not null and appearance_count > 0 order by hash(layer, neuron) limit 1").fetchone()
top = con.sql("select cluster_path, size from clusters where level = 1 and is_module order by size desc limit 1").fetchone()
sub = con.sql("select cluster_path, size from clusters where is_module and size <= 400 order by level desc, size desc limit 1").fetchone()
graph = con.sql("select graph_key from neuron_graphs where layer = ? and neuron = ? order by max_abs_influence desc limit 1", params=list(hot)).fetchone()
print(json.dumps(dict(hot=hot, calm=calm, top=top, sub=sub, graph=str(graph[0]), links=links)))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[float, int]:
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as r:
        size = len(r.read())
    return time.perf_counter() - t, size


def _timed(fn, runs: int = RUNS) -> tuple[float, float]:
    """Median and p95 seconds of `runs` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]


def run(work: Path) -> str:
    from bench.scale import LINKS_PER_BATCH, du
    from bench.scale_lake import ATLAS
    from circuitlake.app.explorer import reads
    from circuitlake.app.explorer.session import Session
    from circuitlake.settings import warehouse

    tier = int(os.environ.get("BENCH_EXPLORER_TIER", "30"))
    repo = str(Path(__file__).resolve().parent.parent)
    wh_path = work / f"tier-{tier}M"
    wh = warehouse(wh_path)
    reuse = os.environ.get("BENCH_EXPLORER_REUSE") and wh.duckdb.exists()
    if reuse:  # the pages again, on the tier an earlier run set up
        setup_note = "set up by an earlier run"
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        batches = math.ceil(tier * 1e6 / LINKS_PER_BATCH)
        setup = measure(SETUP.format(repo=repo, wh=str(wh_path), batches=batches))
        setup_note = f"set up (lake, full build, one Infomap trial) in {setup.seconds:.0f} s"
    t = json.loads(measure(TARGETS.format(wh=str(wh_path))).output.strip().splitlines()[-1])
    links = t["links"]
    hot, calm = "L{}/N{}".format(*t["hot"]), "L{}/N{}".format(*t["calm"])
    q = "?atlas=" + ATLAS
    pages = [
        ("overview", "/", "/api/overview", lambda s: reads.overview(s)),
        ("search: a common word", "/search" + q + "&q=aspirin", "/api/search" + q + "&q=aspirin", lambda s: reads.search(s, ATLAS, "aspirin", 25)),
        ("search: two words", "/search" + q + "&q=french+rhyme", "/api/search" + q + "&q=french+rhyme", lambda s: reads.search(s, ATLAS, "french rhyme", 25)),
        (f"neuron: the most seen ({hot})", f"/neuron/{hot}{q}", f"/api/neuron/{hot}{q}", lambda s: reads.neuron(s, ATLAS, hot)),
        (f"neuron: a random one ({calm})", f"/neuron/{calm}{q}", f"/api/neuron/{calm}{q}", lambda s: reads.neuron(s, ATLAS, calm)),
        (f"circuit: the largest module ({t['top'][1]:,} neurons)", f"/circuit/{t['top'][0]}{q}", f"/api/circuit/{t['top'][0]}{q}", lambda s: reads.circuit(s, ATLAS, t["top"][0])),
        (f"circuit: a small module ({t['sub'][1]} neurons)", f"/circuit/{t['sub'][0]}{q}", f"/api/circuit/{t['sub'][0]}{q}", lambda s: reads.circuit(s, ATLAS, t["sub"][0])),
        ("graph: the most seen neuron's top graph", f"/graph/{t['graph']}{q}", f"/api/graph/{t['graph']}{q}", lambda s: reads.graph(s, ATLAS, int(t["graph"]))),
    ]  # fmt: skip
    cli = {
        f"neuron: the most seen ({hot})": ["neuron", hot, "--atlas", ATLAS],
        "search: a common word": ["search", "aspirin", "--atlas", ATLAS, "--limit", "25"],
    }

    port = _free_port()
    exe = str(Path(sys.executable).parent / "circuitlake")
    server = subprocess.Popen([exe, "--warehouse", str(wh_path), "serve", "--port", str(port)], stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    rows = []
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _get(base + "/api/atlases")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the explorer did not start") from None
                time.sleep(0.2)
        first_overview, _ = _get(base + "/api/overview")  # its figures read once per build, then cached
        first_plots, _ = _get(f"{base}/plots/{urllib.parse.quote(ATLAS)}")  # drawn once per build, then cached
        cached_plots = _timed(lambda: _get(f"{base}/plots/{urllib.parse.quote(ATLAS)}"))[0]
        measured = []
        for name, page, api, _read in pages:
            page_med, page_p95 = _timed(lambda page=page: _get(base + page))
            api_med, _ = _timed(lambda api=api: _get(base + api))
            size = _get(base + page)[1]
            measured.append((name, page_med, page_p95, api_med, size))
    finally:
        server.terminate()
        server.wait(timeout=30)
    session = Session(wh)
    try:
        floors = {name: _timed(lambda read=read: read(session))[0] for name, _p, _a, read in pages}
    finally:
        session.close()
    env = {**os.environ, "CIRCUITLAKE_WAREHOUSE": str(wh_path)}
    clis = {
        name: _timed(lambda args=args: subprocess.run([exe, *args], env=env, capture_output=True, check=True), runs=3)[0]
        for name, args in cli.items()
    }
    for name, page_med, page_p95, api_med, size in measured:
        floor = floors[name]
        before = f"{clis[name] * 1000:.0f} ({clis[name] / page_med:.1f}x)" if name in clis else "-"
        ok = "yes" if page_med < 0.3 else "**no**"
        rows.append(
            [
                name,
                f"{page_med * 1000:.0f}",
                f"{page_p95 * 1000:.0f}",
                ok,
                f"{api_med * 1000:.0f}",
                f"{floor * 1000:.0f}",
                before,
                f"{size / 1024:.0f}",
            ]
        )
    head = (
        f"## Explorer pages at the {tier}M tier\n\n"
        f"`circuitlake serve` over a Qwen-shaped warehouse: {links / 1e6:.0f}M raw neuron links in the lake "
        f"({du(wh_path / 'lake'):.1f} GiB), 64 x 25,600 neurons, warehouse {du(wh.duckdb):.1f} GiB; {setup_note}. Warm requests over HTTP on 127.0.0.1 (median and p95 of {RUNS}); the in-process "
        "read is the same answer without HTTP and HTML (the floor); the CLI is the command that answered it before (a process per "
        f"question, median of 3; in brackets how many times the page's time). The overview's figures: {first_overview * 1000:.0f} ms "
        f"the first time after a build or lake commit, then cached; its plots: {first_plots:.1f} s the first "
        f"time after a build, {cached_plots * 1000:.0f} ms after (cached per build).\n\n"
    )
    header = ["page", "page median ms", "page p95 ms", "< 300 ms", "JSON API median ms", "in-process read ms", "CLI before ms", "page KiB"]
    return head + table(header, rows)
