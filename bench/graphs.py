"""Graph ingest + build against the research pipeline's way, on one generated corpus, in one run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from bench.measure import Measurement, measure, table
from circuitlake.app.sample import SampleSpec, write_graphs
from circuitlake.ingest import sources

AGGREGATE = r"""
NEURON = re.compile(r"^(\d+)_(\d+)_\d+$")
def aggregate(edges, links):
    for l in links:
        s, t = NEURON.match(l["source"]), NEURON.match(l["target"])
        if s and t:
            k = (int(s[1]), int(s[2]), int(t[1]), int(t[2])); w = l["weight"]
            e = edges.get(k)
            if e is None:
                edges[k] = [1, w, abs(w), w * w, w, w]
            else:
                e[0] += 1; e[1] += w; e[2] += abs(w); e[3] += w * w; e[4] = min(e[4], w); e[5] = max(e[5], w)
"""  # the research aggregator's per-link work, shared by the baseline and the profile

BASELINE = """
import gzip, json, re, sys
from pathlib import Path
{aggregate}
edges = {{}}
for f in sorted(Path(sys.argv[1] if len(sys.argv) > 1 else {corpus!r}).iterdir()):
    raw = f.read_bytes()
    aggregate(edges, json.loads(gzip.decompress(raw) if f.suffix == ".gz" else raw)["links"])
print("edges with count >= 3:", sum(1 for e in edges.values() if e[0] >= 3))
"""

INGEST = """
from circuitlake import lake, registry
from circuitlake.settings import warehouse
from circuitlake.ingest.graphs import ingest_graphs
wh = warehouse({warehouse!r}); lake.ensure(wh)
registry.add(wh, registry.AtlasRecord(atlas="bench", model_id="bench", num_layers=8, neurons_per_layer=512))
print(ingest_graphs(wh, "bench", [{corpus!r}], show_progress=False).landed)
"""

BUILD = """
from circuitlake.app.build import build
from circuitlake.settings import warehouse
import duckdb
wh = warehouse({warehouse!r})
build(wh, cluster=False)
con = duckdb.connect(str(wh.duckdb), read_only=True)
print("edges with count >= 3:", con.sql("select count(*) from edges").fetchone()[0])
"""


PROFILE = """
import pickle, time
from pathlib import Path
import pyarrow as pa
from circuitlake import lake
from circuitlake.settings import warehouse
from circuitlake.ingest import sources
from circuitlake.ingest.graph_landers import CHUNK_GRAPHS, with_key
from circuitlake.ingest.graph_rows import Shape, many_rows, read_graph
import json, re, shutil, tempfile
files = sorted(Path({corpus!r}).iterdir())[:256]
spent = dict.fromkeys(["main: read file (gunzip a quarter)", "main: sha256", "main -> worker: content bytes (pickle both ways)",
                       "worker: parse (msgspec typed structs -> Arrow columns)",
                       f"worker: rows ({{CHUNK_GRAPHS}} graphs at a time: classify, endpoints, checks)",
                       "worker: Delta write", "research: json.loads", "research: regex + dict update per link"], 0.0)
nodes, links, graphs = [], [], []
{aggregate}
for f in files:
    t = time.perf_counter(); data = sources.read_bytes(f); spent["main: read file (gunzip a quarter)"] += time.perf_counter() - t
    t = time.perf_counter(); sources.sha256(data); spent["main: sha256"] += time.perf_counter() - t
    t = time.perf_counter(); pickle.loads(pickle.dumps((str(f), "0" * 64, data))); spent["main -> worker: content bytes (pickle both ways)"] += time.perf_counter() - t
    t = time.perf_counter(); graphs.append(read_graph(data)); spent["worker: parse (msgspec typed structs -> Arrow columns)"] += time.perf_counter() - t
    t = time.perf_counter(); doc = json.loads(data); spent["research: json.loads"] += time.perf_counter() - t
    t = time.perf_counter(); aggregate({{}}, doc["links"])
    spent["research: regex + dict update per link"] += time.perf_counter() - t
for i in range(0, len(graphs), CHUNK_GRAPHS):
    t = time.perf_counter(); rows = many_rows(graphs[i : i + CHUNK_GRAPHS], Shape(8, 512))
    keys = list(range(len(rows.graphs)))
    nodes.append(with_key(rows.nodes, "graph_nodes", keys)); links.append(with_key(rows.links, "graph_links", keys))
    spent[f"worker: rows ({{CHUNK_GRAPHS}} graphs at a time: classify, endpoints, checks)"] += time.perf_counter() - t
tmp = Path(tempfile.mkdtemp()); wh = warehouse(tmp); lake.ensure(wh)
t = time.perf_counter()
for name, parts in (("graph_links", links), ("graph_nodes", nodes)):
    table = pa.concat_tables(parts)
    table = table.append_column("atlas", pa.repeat(pa.scalar("a"), table.num_rows)).append_column("batch", pa.repeat(pa.scalar("b"), table.num_rows))
    lake.append(wh, name, table)
spent["worker: Delta write"] += time.perf_counter() - t
shutil.rmtree(tmp)
for k, v in spent.items():
    print(f"{{k}}\\t{{v / len(files) * 1000:.2f}}")
"""

# realistic graphs: the FineWeb corpus is 24 GB of 39,358 files (~0.6 MB each, indent=2)
SPEC = SampleSpec(graphs=2000, seed=1, min_nodes=450, max_nodes=550, pretty_every=1)
# graphs of ~6K links each, written compact
DENSE = SampleSpec(graphs=1000, seed=2, min_nodes=1050, max_nodes=1200, pretty_every=10**9)
CORPORA = {"realistic (indent=2, ~3-5K links)": ("corpus", SPEC), "6K links (compact)": ("corpus-6k", DENSE)}


def _corpus(work: Path, spec: SampleSpec) -> tuple[Path, list[Path]]:
    """The corpus of `spec` under `work` (written again when the spec changed)."""
    stamp = work / "spec.txt"
    if not stamp.exists() or stamp.read_text() != repr(spec):
        shutil.rmtree(work, ignore_errors=True)
        write_graphs(spec, work)
        stamp.write_text(repr(spec))
    return work / "graphs", sorted((work / "graphs").iterdir())


def _best(runs: int, code: str) -> Measurement:
    """The quickest of `runs` measurements of `code` (the others met a busier machine), with the highest peak RSS."""
    measured = [measure(code) for _ in range(runs)]
    quickest = min(measured, key=lambda m: m.seconds)
    return Measurement(quickest.seconds, max(m.peak_rss_mb for m in measured), quickest.output)


def _compare(work: Path, name: str, spec: SampleSpec) -> tuple[list[list[str]], str]:
    """Rows of the side-by-side table for one corpus, and its one-line description."""
    graphs, files = _corpus(work / CORPORA[name][0], spec)
    size_mb = sum(f.stat().st_size for f in files) / 2**20
    mean_mb = sum(len(sources.read_bytes(f)) for f in files) / len(files) / 1e6
    links = sum(len(json.loads(sources.read_bytes(f))["links"]) for f in files[:50]) / min(50, len(files))
    base = _best(2, BASELINE.format(corpus=str(graphs), aggregate=AGGREGATE))
    ingest = _best(
        2,
        f"import shutil; shutil.rmtree({str(work / 'warehouse')!r}, ignore_errors=True)\n"
        + INGEST.format(corpus=str(graphs), warehouse=str(work / "warehouse")),
    )
    ours = measure(BUILD.format(warehouse=str(work / "warehouse")))
    edges = ours.output.strip().splitlines()[-1]
    assert base.output.strip().splitlines()[-1] == edges, (base.output, ours.output)
    total = ingest.seconds + ours.seconds
    n = spec.graphs

    def row(what: str, m_seconds: float, rss: float, ratio: bool = True) -> list[str]:
        return [
            name,
            what,
            f"{m_seconds:.1f}",
            f"{n / m_seconds:.0f}" if ratio else "-",
            f"{rss:.0f}",
            f"{base.seconds / m_seconds:.2f}" if ratio else "-",
        ]

    rows = [
        row("research way (json.load + dict of [count,sum,abs,sq,min,max])", base.seconds, base.peak_rss_mb),
        row(
            f"circuitlake ingest graphs ({os.cpu_count()} worker processes, each committing its own batches)",
            ingest.seconds,
            ingest.peak_rss_mb,
        ),
        row("circuitlake build (SQLMesh/DuckDB: partials, edges, neurons, index)", ours.seconds, ours.peak_rss_mb, ratio=False),
        row("circuitlake ingest + build", total, max(ingest.peak_rss_mb, ours.peak_rss_mb)),
    ]
    about = f"{name}: {n} graphs, {mean_mb:.2f} MB each decompressed (~{links:,.0f} links), {size_mb:.0f} MB on disk, a quarter gzipped; {edges}"
    return rows, about


def run(work: Path) -> str:
    rows, about = [], []
    for name, (_, spec) in CORPORA.items():
        r, a = _compare(work, name, spec)
        rows += r
        about.append(f"- {a}")
    graphs, _ = _corpus(work / "corpus", SPEC)
    profile = [
        line.split("\t") for line in measure(PROFILE.format(corpus=str(graphs), aggregate=AGGREGATE)).output.strip().splitlines()[-8:]
    ]
    return (
        f"## Graph ingest + build\n\nTwo generated corpora (8 x 512 model), {os.cpu_count()} cores; on each the research way and "
        "circuitlake ingest are measured twice in the same run and the quicker run of each is shown (this machine's speed "
        "varies by up to a third between runs); "
        "both produce the same edge set (edges with count >= 3). Peak RSS covers the whole process tree (ingest: the "
        "main process and its workers). The research way keeps only the aggregate; circuitlake also lands every node and link raw.\n\n"
        + "\n".join(about)
        + "\n\n"
        + table(["corpus", "pipeline", "seconds", "graphs/s", "peak RSS MB", "x research way"], rows)
        + "\n\nWhere the CPU goes per graph (ms, one process, the first 256 realistic graphs (one batch); the ingest runs the main "
        "process's part beside one worker per core, the research way runs its two in one):\n\n"
        + table(["step", "ms per graph"], profile)
        + "\n"
    )
