"""Label search at Qwen3-32B size: 1,638,400 neurons (64 x 25,600), 97.8% labeled, 256-d label embeddings.

A synthetic `neurons` table with research-shaped label texts (a short label, output and input labels,
a description of ~25 words drawn Zipf-like from a 4,000-word vocabulary; 60 neurons planted as
"aspirin dosing") is indexed by the build's own code (jobs/search_index.py) and queried with the
API's own SQL (circuitlake/search.py). Baseline in the same run: ILIKE, what the research lab used.
Semantic: brute-force cosine over FLOAT[256] against DuckDB's `vss` HNSW index.
"""

from __future__ import annotations

from pathlib import Path

from bench.measure import measure, table
from circuitlake.search import embeddings_table

REPO = str(Path(__file__).resolve().parent.parent)
ATLAS = "qwen-shaped"
LAYERS, PER_LAYER, DIMS = 64, 25_600, 256

MAKE = """
import sys; sys.path.insert(0, {repo!r})
import duckdb
con = duckdb.connect({db!r})
# a 4,000-word vocabulary of letter-only words ('qbaa', 'qcaa', ...), drawn Zipf-like
con.execute("create or replace macro word(i) as 'q' || chr(98 + i % 24) || chr(97 + (i // 24) % 26) || chr(97 + (i // 624) % 26)")
con.execute('''create or replace table neurons as
  with grid as (select i // {per} as layer, i % {per} as neuron, i as feature_id from range({total}) t(i))
  select '{atlas}' as atlas, layer::int as layer, neuron::int as neuron, feature_id,
    case when neuron < 60 and layer = 30 then 'aspirin dosing in medical text'
         when random() < 0.978 then array_to_string(list_transform(range(4), x -> word(floor(pow(random(), 3) * 4000)::int)), ' ') end as label,
    case when random() < 0.9 then array_to_string(list_transform(range(10), x -> word(floor(pow(random(), 3) * 4000)::int)), ' ') end as output_label,
    case when random() < 0.9 then array_to_string(list_transform(range(8), x -> word(floor(pow(random(), 3) * 4000)::int)), ' ') end as input_label,
    case when random() < 0.8 then array_to_string(list_transform(range(25), x -> word(floor(pow(random(), 3) * 4000)::int)), ' ') end as description,
    (feature_id % 900)::text || '.' || (feature_id % 13)::text as cluster_path, (feature_id % 900)::int as top_cluster
  from grid''')
print(con.execute("select count(*), count(label) from neurons").fetchone())
"""

INDEX = """
import sys; sys.path.insert(0, {repo!r})
import duckdb
from circuitlake import duck
from circuitlake.jobs.search_index import index_docs
con = duck.load(duckdb.connect({db!r}), "fts")
con.execute("create schema if not exists search")
print(index_docs(con, {atlas!r}))
"""

QUERY = """
import sys, time, statistics; sys.path.insert(0, {repo!r})
import duckdb
from circuitlake import duck, search
con = duck.load(duckdb.connect({db!r}, read_only=True), "fts")
def timed(sql, params, runs=7):
    times = []
    for _ in range(runs):
        t = time.perf_counter(); rows = con.execute(sql, params).fetchall(); times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), sorted(times)[-1], len(rows)
bm25 = search.bm25_sql({atlas!r})
for q in ["aspirin", "aspirin doses", "qbaa qdaa", "qbdf", "qbaa qcaa qdaa qeaa qfaa"]:
    print("bm25", q, *timed(bm25, [q, 20, {atlas!r}]))
print("ilike", "label ilike '%aspirin%'", *timed("select layer, neuron, label, top_cluster from neurons where label ilike '%aspirin%' limit 20", []))
print("ilike", "4 text columns ilike '%qbdf%'", *timed("select layer, neuron, label from neurons where concat_ws(' ', label, output_label, input_label, description) ilike '%qbdf%' limit 20", []))
"""

VECTORS = """
import sys; sys.path.insert(0, {repo!r})
import duckdb
con = duckdb.connect({db!r})
con.execute("create schema if not exists search")
con.execute('''create or replace table {table} as
  select layer, neuron, cast(list_transform(range({dims}), x -> random() - 0.5) as float[{dims}]) as embedding
  from neurons where label is not null''')
print(con.execute("select count(*) from {table}").fetchone()[0])
"""

BRUTE = """
import sys, time, statistics; sys.path.insert(0, {repo!r})
import duckdb
from circuitlake import search
con = duckdb.connect({db!r}, read_only=True)
q = con.execute("select embedding::float[] from {table} limit 1 offset 777").fetchone()[0]
times = []
for _ in range(5):
    t = time.perf_counter(); rows = con.execute(search.cosine_sql({atlas!r}, {dims}), [q, 20, {atlas!r}]).fetchall(); times.append((time.perf_counter() - t) * 1000)
print(statistics.median(times), max(times), rows[0][2])
"""

HNSW = """
import sys, time, statistics; sys.path.insert(0, {repo!r})
import duckdb
from circuitlake import duck
con = duck.load(duckdb.connect(), "vss")
con.execute("attach {db!r} as w (read_only)")
con.execute("create table e as select * from w.{table} limit {subset}")
q = con.execute("select embedding::float[] from e limit 1 offset 777").fetchone()[0]
sql = "select layer, neuron, array_cosine_distance(embedding, cast($1 as float[{dims}])) as d from e order by d limit 20"
def timed():
    times = []
    for _ in range(7):
        t = time.perf_counter(); rows = con.execute(sql, [q]).fetchall(); times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), rows
brute, exact = timed()
t = time.perf_counter()
con.execute("create index e_hnsw on e using hnsw (embedding) with (metric = 'cosine')")
build = time.perf_counter() - t
assert "HNSW" in con.execute("explain " + sql, [q]).fetchall()[0][1], "the index is not used"
indexed, approx = timed()
recall = len({{(r[0], r[1]) for r in exact}} & {{(r[0], r[1]) for r in approx}}) / len(exact)
print(build, brute, indexed, recall)
"""

HNSW_SUBSET = 200_000  # building the index over all 1.6M vectors takes hours on 2 cores (measured: 43% after 35 min)


def _last(output: str) -> str:
    """A step's result line (DuckDB's progress bar may print before it)."""
    return output.strip().splitlines()[-1]


def run(work: Path) -> str:
    work.mkdir(parents=True, exist_ok=True)
    db = str(work / "atlas.duckdb")  # not search.duckdb: a catalog named like the schema `search` is ambiguous
    table_name = embeddings_table(ATLAS)
    args = dict(repo=REPO, db=db, atlas=ATLAS, per=PER_LAYER, total=LAYERS * PER_LAYER, dims=DIMS, table=table_name, subset=HNSW_SUBSET)
    made = measure(MAKE.format(**args))
    indexed = measure(INDEX.format(**args))
    queried = measure(QUERY.format(**args))
    rows = [["make the neurons table (setup)", f"{made.seconds:.0f} s", f"{made.peak_rss_mb:,.0f}", _last(made.output)]]
    rows.append(
        ["full-text index (build step)", f"{indexed.seconds:.0f} s", f"{indexed.peak_rss_mb:,.0f}", f"{int(_last(indexed.output)):,} docs"]
    )
    for line in (x for x in queried.output.splitlines() if x.startswith(("bm25 ", "ilike "))):
        kind, rest = line.split(" ", 1)
        query, median, worst, found = rest.rsplit(" ", 3)
        name = f"BM25 '{query}' (top 20)" if kind == "bm25" else f"baseline: {query}"
        rows.append([name, f"{float(median):.0f} ms (max {float(worst):.0f})", "", f"{found} rows"])
    vectors = measure(VECTORS.format(**args))
    rows.append(
        [f"{DIMS}-d vectors as FLOAT[{DIMS}] (setup)", f"{vectors.seconds:.0f} s", f"{vectors.peak_rss_mb:,.0f}", _last(vectors.output)]
    )
    brute = measure(BRUTE.format(**args))
    median, worst, _best = _last(brute.output).split()
    rows.append(
        ["semantic: brute-force cosine (top 20)", f"{float(median):.0f} ms (max {float(worst):.0f})", f"{brute.peak_rss_mb:,.0f}", ""]
    )
    try:
        hnsw = measure(HNSW.format(**args))
        build, brute_subset, indexed, recall = (float(x) for x in _last(hnsw.output).split())
        n = f"{HNSW_SUBSET:,}"
        rows.append([f"semantic, {n} vectors: brute-force cosine (top 20)", f"{brute_subset:.0f} ms", "", "exact"])
        rows.append([f"semantic, {n} vectors: HNSW index build (vss)", f"{build:.0f} s", f"{hnsw.peak_rss_mb:,.0f}", "in memory"])
        rows.append([f"semantic, {n} vectors: HNSW query (top 20)", f"{indexed:.1f} ms", "", f"recall@20 {recall:.2f}"])
    except RuntimeError as e:
        rows.append(["semantic: HNSW index", "failed", "", str(e).splitlines()[-1][:120]])
    return (
        "## Label search at 1.64M neurons\n\n"
        f"{LAYERS} x {PER_LAYER:,} neurons (Qwen3-32B's shape), 97.8% labeled, research-shaped texts (label, output/input labels, "
        "description; ~45 words per neuron), indexed by the build's code and queried with the API's SQL; medians of 7 runs "
        "on a warm connection. Baseline: ILIKE.\n\n" + table(["step", "time", "peak RSS MB", "result"], rows) + "\n"
    )
