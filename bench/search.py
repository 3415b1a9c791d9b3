"""Label search at Qwen3-32B size: 1,638,400 neurons (64 x 25,600), 97.8% labeled, 256-d label embeddings.

A synthetic `neurons` table with research-shaped label texts (a short label, output and input labels,
a description of ~25 words drawn Zipf-like from a 4,000-word vocabulary; 60 neurons planted as
"aspirin dosing") is indexed by the build's own code (jobs/search_index.py: tantivy) and queried as
`Atlas.search` queries it (circuitlake/search.py). Baselines in the same run: DuckDB's `fts` BM25 index
(the index before tantivy) and ILIKE, what the research lab used. Semantic: the build's vector index (faiss
IVF at this size) against brute-force cosine over FLOAT[256] (what search ran before), on clustered vectors.
"""

from __future__ import annotations

from pathlib import Path

from bench.measure import measure, table
from circuitlake.search import PROBES, cells, embeddings_table

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
# what labeled_units reads beside `neurons` in a built warehouse
con.execute("create schema if not exists stg; create schema if not exists lake")
con.execute("create or replace table stg.neuron_labels as select * exclude (feature_id, cluster_path, top_cluster) from neurons limit 0")
con.execute("create or replace table lake.atlases as select '{atlas}' as atlas, {per} as neurons_per_layer")
print(con.execute("select count(*), count(label) from neurons").fetchone())
"""

INDEX = """
import sys; sys.path.insert(0, {repo!r})
import duckdb
from circuitlake.jobs.search_index import index_docs
from circuitlake.settings import warehouse
con = duckdb.connect({db!r}, read_only=True)
print(index_docs(con, warehouse({work!r}), {atlas!r}, "bench"))
"""

# the baseline: the DuckDB `fts` index the build made before tantivy (its settings and SQL as they were)
DUCKDB_FTS = """
import sys; sys.path.insert(0, {repo!r})
import duckdb
from circuitlake import duck, search
con = duck.load(duckdb.connect({db!r}), "fts")
con.execute("create schema if not exists fts_baseline")
con.execute("create or replace table fts_baseline.docs as select feature_id, layer, neuron, label, output_label, input_label, description from neurons where " + search.LABEL_TEXT + " <> ''")
con.execute(r"pragma create_fts_index('fts_baseline.docs', 'feature_id', 'label', 'output_label', 'input_label', 'description', stemmer = 'porter', stopwords = 'english', ignore = '(\\.|[^a-z0-9])+', overwrite = 1)")
print(con.execute("select count(*) from fts_baseline.docs").fetchone()[0])
"""

QUERY = """
import sys, time, statistics; sys.path.insert(0, {repo!r})
import duckdb
from circuitlake import duck, search
from circuitlake.settings import warehouse
con = duck.load(duckdb.connect({db!r}, read_only=True), "fts")
folder = search.fts_folder(warehouse({work!r}), {atlas!r}, "bench")
def tantivy_search(text, limit):  # what Atlas.search does
    folded = duck.scalar(con, "select " + search.FOLD.format("?"), [text])
    hits = search.bm25(folder, folded, limit)
    return con.execute(search.hits_sql(), [[list(h) for h in hits], limit, {atlas!r}]).fetchall()
def duckdb_fts(text, limit):  # the SQL of before, over the baseline index
    return con.execute(
        "with ranked as (select layer, neuron, score from (select layer, neuron, fts_fts_baseline_docs.match_bm25(feature_id, $1) as score "
        "from fts_baseline.docs) where score is not null order by score desc, layer, neuron limit $2) "
        "select r.layer, r.neuron, round(r.score, 4), n.label, n.cluster_path from ranked as r join " + search.labeled_units("$3") + " as n "
        "on n.layer = r.layer and n.neuron = r.neuron order by r.score desc, r.layer, r.neuron", [text, limit, {atlas!r}]).fetchall()
def timed(fn, *args, runs=7):
    times = []
    for _ in range(runs):
        t = time.perf_counter(); rows = fn(*args); times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), sorted(times)[-1], rows
for q in ["aspirin", "aspirin doses", "qbaa", "qbaa qdaa", "qbdf", "qbaa qcaa qdaa qeaa qfaa"]:
    ours, theirs = timed(tantivy_search, q, 20), timed(duckdb_fts, q, 20)
    same = len({{r[:2] for r in ours[2]}} & {{r[:2] for r in theirs[2]}})
    print("bm25", repr(q), round(ours[0], 1), round(ours[1], 1), round(theirs[0], 1), round(theirs[1], 1), same)
def sql(text, params):
    return con.execute(text, params).fetchall()
for name, text in [("label ilike '%aspirin%'", "select layer, neuron, label, top_cluster from neurons where label ilike '%aspirin%' limit 20"),
                   ("4 text columns ilike '%qbdf%'", "select layer, neuron, label from neurons where concat_ws(' ', label, output_label, input_label, description) ilike '%qbdf%' limit 20")]:
    median, worst, rows = timed(sql, text, [])
    print("ilike", repr(name), round(median, 1), round(worst, 1), len(rows))
"""

VECTORS = """
import sys; sys.path.insert(0, {repo!r})
import duckdb, numpy as np, pyarrow as pa
# clustered like label embeddings: 2,000 topics, each vector its topic's direction plus noise
con = duckdb.connect({db!r})
con.execute("create schema if not exists search")
keys = con.execute("select layer, neuron from neurons where label is not null order by layer, neuron").arrow().read_all()
rng = np.random.default_rng(0)
topics = rng.standard_normal((2000, {dims})).astype(np.float32)
con.execute("create or replace table {table} (layer int, neuron int, embedding float[{dims}])")
for start in range(0, keys.num_rows, 200_000):
    part = keys.slice(start, 200_000)
    vectors = topics[rng.integers(0, 2000, part.num_rows)] + 0.8 * rng.standard_normal((part.num_rows, {dims})).astype(np.float32)
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), {dims})
    chunk = pa.table({{"layer": part["layer"], "neuron": part["neuron"], "embedding": embedding}})
    con.execute("insert into {table} select * from chunk")
print(con.execute("select count(*) from {table}").fetchone()[0])
"""

VECTOR_INDEX = """
import sys; sys.path.insert(0, {repo!r})
import duckdb
from circuitlake import search
from circuitlake.jobs.search_index import write_vector_index
from circuitlake.settings import warehouse
con = duckdb.connect({db!r}, read_only=True)
print(write_vector_index(con, {table!r}, search.vector_file(warehouse({work!r}), {atlas!r}, "bench"), {dims}))
"""

# queries: 50 stored vectors with noise added; brute force (exact cosine over FLOAT[256] in DuckDB, what
# search ran before) against the vector index as `Atlas.search(semantic=True)` queries it
SEMANTIC = """
import sys, time, statistics; sys.path.insert(0, {repo!r})
import duckdb, numpy as np
from circuitlake import search
from circuitlake.settings import warehouse
con = duckdb.connect({db!r}, read_only=True)
path = search.vector_file(warehouse({work!r}), {atlas!r}, "bench")
brute = "select layer, neuron from {table} order by array_cosine_similarity(embedding, cast($1 as float[{dims}])) desc limit 20"
rng = np.random.default_rng(1)
picks = con.execute("select embedding::float[] from {table} using sample reservoir(50 rows) repeatable (1)").fetchall()
exact_ms, index_ms, recalls = [], [], []
for (v,) in picks:
    q = (np.asarray(v, dtype=np.float32) + 0.3 * rng.standard_normal({dims}).astype(np.float32)).tolist()
    t = time.perf_counter(); exact = {{tuple(r) for r in con.execute(brute, [q]).fetchall()}}; exact_ms.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter(); found = search.nearest(path, q, 20); index_ms.append((time.perf_counter() - t) * 1000)
    recalls.append(len(exact & {{(l, n) for l, n, _ in found}}) / 20)
print(statistics.median(exact_ms), max(exact_ms), statistics.median(index_ms), max(index_ms), statistics.mean(recalls), min(recalls))
"""


def _last(output: str) -> str:
    """A step's result line: its last line, without the DuckDB progress bar that may end on it (a long
    query's bar ends in "(<1 second remaining)" with no newline)."""
    return output.strip().splitlines()[-1].rsplit("remaining)", 1)[-1].strip()


def run(work: Path) -> str:
    work.mkdir(parents=True, exist_ok=True)
    db = str(work / "atlas.duckdb")  # not search.duckdb: a catalog named like the schema `search` is ambiguous
    table_name = embeddings_table(ATLAS)
    args = dict(
        repo=REPO,
        db=db,
        work=str(work),
        atlas=ATLAS,
        per=PER_LAYER,
        total=LAYERS * PER_LAYER,
        dims=DIMS,
        table=table_name,
    )
    made = measure(MAKE.format(**args))
    indexed = measure(INDEX.format(**args))
    baseline = measure(DUCKDB_FTS.format(**args))
    queried = measure(QUERY.format(**args))
    rows = [["make the neurons table (setup)", f"{made.seconds:.0f} s", f"{made.peak_rss_mb:,.0f}", _last(made.output)]]
    for name, step in (
        ("full-text index: tantivy (the build step)", indexed),
        ("baseline: DuckDB fts index (the build step before)", baseline),
    ):
        rows.append([name, f"{step.seconds:.0f} s", f"{step.peak_rss_mb:,.0f}", f"{int(_last(step.output)):,} docs"])
    for line in (x for x in queried.output.splitlines() if x.startswith(("bm25 ", "ilike "))):
        kind, rest = line.split(" ", 1)
        if kind == "bm25":
            query, median, worst, base_median, base_worst, same = rest.rsplit(" ", 5)
            speedup = float(base_median) / max(float(median), 0.01)
            rows.append(
                [
                    f"BM25 {query} (top 20): tantivy",
                    f"{float(median):.1f} ms (max {float(worst):.0f})",
                    "",
                    f"{speedup:.0f}x faster; {same} of 20 hits shared",
                ]
            )
            rows.append(
                [f"BM25 {query} (top 20): baseline DuckDB fts", f"{float(base_median):.0f} ms (max {float(base_worst):.0f})", "", ""]
            )
        else:
            query, median, worst, found = rest.rsplit(" ", 3)
            rows.append([f"baseline: {query}", f"{float(median):.0f} ms (max {float(worst):.0f})", "", f"{found} rows"])
    vectors = measure(VECTORS.format(**args))
    rows.append(
        [
            f"{DIMS}-d clustered vectors as FLOAT[{DIMS}] (setup)",
            f"{vectors.seconds:.0f} s",
            f"{vectors.peak_rss_mb:,.0f}",
            _last(vectors.output),
        ]
    )
    built = measure(VECTOR_INDEX.format(**args))
    rows.append(
        [
            "semantic: vector index, faiss IVF (the build step)",
            f"{built.seconds:.0f} s",
            f"{built.peak_rss_mb:,.0f}",
            f"{int(_last(built.output)):,} vectors in {cells(LAYERS * PER_LAYER):,} cells, {PROBES} probed",
        ]
    )
    semantic = measure(SEMANTIC.format(**args))
    exact, exact_worst, approx, approx_worst, recall, worst_recall = (float(x) for x in _last(semantic.output).split())
    rows.append(
        [
            "semantic top 20: faiss IVF",
            f"{approx:.1f} ms (max {approx_worst:.0f})",
            f"{semantic.peak_rss_mb:,.0f}",
            f"recall@20 {recall:.3f} (lowest {worst_recall:.2f}); {exact / approx:.0f}x faster",
        ]
    )
    rows.append(["semantic top 20: baseline brute-force cosine (DuckDB)", f"{exact:.0f} ms (max {exact_worst:.0f})", "", "exact"])
    return (
        "## Label search at 1.64M neurons\n\n"
        f"{LAYERS} x {PER_LAYER:,} neurons (Qwen3-32B's shape), 97.8% labeled, research-shaped texts (label, output/input labels, "
        "description; ~45 words per neuron), indexed by the build's code and queried with the API's SQL; medians of 7 runs "
        "on a warm connection, both full-text indexes in the same run (hits shared: the top 20s differ only where scores tie or "
        "nearly tie; tantivy keeps a document's length in one byte). Baseline: ILIKE.\n\n"
        + table(["step", "time", "peak RSS MB", "result"], rows)
        + "\n"
    )
