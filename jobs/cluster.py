"""`circuitlake cluster`: Infomap circuits over an atlas's published edges, landed in the lake.

Input (deterministic: one ORDER BY, fixed seed and thread count): the atlas's `method` edges with
count >= min_count, link weight = mean_abs_weight^2, between neurons with more than one kept edge;
node id = feature_id. A run lands `cluster_assignments` (path, flow per neuron) and a `cluster_runs`
row naming the edges snapshot it read (edges hash, graphs hash) as one batch. Re-running with the
same edges and settings is a no-op; an atlas with no kept edges is left unclustered.
"""

from __future__ import annotations

import hashlib
import time

import duckdb
import numpy as np
import pyarrow as pa

from circuitlake import duck, lake, locks, native, registry
from circuitlake.lake import Batch
from circuitlake.progress import console
from circuitlake.settings import Warehouse

INPUT_SQL = """
with kept as (
  select src_layer, src_neuron, tgt_layer, tgt_neuron,
         mean_abs_weight * mean_abs_weight as weight  -- research pipeline: link weight = mean_abs_weight^2
  from edges
  where atlas = $atlas and method = $method
    and count >= $min_count  -- research pipeline: RelP edges with count >= 5 are clustered
),
degree as (
  select layer, neuron, count(*) as kept_edges
  from (select src_layer as layer, src_neuron as neuron from kept
        union all select tgt_layer, tgt_neuron from kept)
  group by layer, neuron
)
select k.src_layer * $npl + k.src_neuron as src, k.tgt_layer * $npl + k.tgt_neuron as tgt, k.weight
from kept as k
join degree as s on k.src_layer = s.layer and k.src_neuron = s.neuron
join degree as t on k.tgt_layer = t.layer and k.tgt_neuron = t.neuron
where s.kept_edges > 1 and t.kept_edges > 1  -- only neurons with more than one kept edge
order by src, tgt
"""


def read_input(wh: Warehouse, atlas: registry.AtlasRecord) -> tuple[pa.Table, str | None]:
    """The ordered links Infomap gets, and the graphs hash of the edges they came from."""
    c = atlas.settings.cluster
    con = duck.connect(wh, read_only=True)
    try:
        links = con.execute(
            INPUT_SQL, {"atlas": atlas.name, "method": c.method, "min_count": c.min_count, "npl": atlas.neurons_per_layer}
        ).arrow()
        if isinstance(links, pa.RecordBatchReader):
            links = links.read_all()
        row = con.execute("select value from metadata where atlas = ? and key = 'graphs_hash'", [atlas.name]).fetchone()
    except duckdb.CatalogException:
        return pa.table({"src": pa.array([], pa.int64()), "tgt": pa.array([], pa.int64()), "weight": pa.array([], pa.float64())}), None
    finally:
        con.close()
    return links, row[0] if row else None


SECONDS_PER_LINK_TRIAL = 2e-5  # measured (bench/RESULTS.md): 10M links, 1 trial, 2 threads ~ 100 s


def estimate(wh: Warehouse, atlas: registry.AtlasRecord) -> tuple[int, float]:
    """(links Infomap would get, estimated seconds) without reading the links out."""
    c = atlas.settings.cluster
    con = duck.connect(wh, read_only=True)
    try:
        row = con.execute(
            f"select count(*) from ({INPUT_SQL})",
            {"atlas": atlas.name, "method": c.method, "min_count": c.min_count, "npl": atlas.neurons_per_layer},
        ).fetchone()
        links = row[0] if row else 0
    except duckdb.CatalogException:
        return 0, 0.0
    finally:
        con.close()
    return links, links * c.trials * SECONDS_PER_LINK_TRIAL * 2 / max(c.threads, 1)


def edges_hash(links: pa.Table) -> str:
    h = hashlib.sha256()
    for name in ("src", "tgt", "weight"):
        h.update(np.ascontiguousarray(links[name].to_numpy()).tobytes())
    return h.hexdigest()


def latest_run(wh: Warehouse, atlas: str) -> dict | None:
    committed = lake.committed_batches(wh, atlas, "cluster")
    runs = [r for r in lake.read(wh, "cluster_runs", filters=[("atlas", "=", atlas)]).to_pylist() if r["batch"] in committed]
    return max(runs, key=lambda r: r["batch"]) if runs else None


def needs_clustering(wh: Warehouse, atlas: registry.AtlasRecord) -> bool:
    """True when the atlas has never been clustered or its cluster settings changed (not for new data)."""
    run = latest_run(wh, atlas.name)
    return run is None or run["settings"] != atlas.settings.cluster.model_dump_json()


def run_infomap(links: pa.Table, settings: registry.ClusterSettings):
    """Directed multi-level Infomap over (src, tgt, weight) links in their given order; (result, node_id/path/flow frame)."""
    infomap = native.infomap()

    network = infomap.Network()
    network.add_links(zip(links["src"].to_pylist(), links["tgt"].to_pylist(), links["weight"].to_pylist(), strict=False))
    result = infomap.run(network, seed=settings.seed, num_trials=settings.trials, directed=True, num_threads=settings.threads)
    return result, result.to_dataframe(columns=["node_id", "path", "flow"])


@locks.writes_atlas("cluster")
def cluster(wh: Warehouse, atlas_name: str, force: bool = False) -> dict | None:
    """Run Infomap for the atlas and land the result; returns the run row, or None when nothing was done."""
    infomap = native.infomap()
    atlas = registry.get(wh, atlas_name)
    settings = atlas.settings.cluster
    links, graphs_hash = read_input(wh, atlas)
    if links.num_rows == 0:
        console.print(f"cluster {atlas.name}: no edges with count >= {settings.min_count} yet; nothing to cluster")
        return None
    digest = edges_hash(links)
    previous = latest_run(wh, atlas.name)
    if not force and previous and previous["edges_hash"] == digest and previous["settings"] == settings.model_dump_json():
        console.print(f"cluster {atlas.name}: same edges and settings as run {previous['batch']}; nothing to do")
        return None

    console.print(
        f"cluster {atlas.name}: Infomap on {links.num_rows:,} links, {settings.trials} trials, seed {settings.seed}, "
        f"{settings.threads} thread(s)"
    )
    started = time.perf_counter()
    result, frame = run_infomap(links, settings)
    seconds = time.perf_counter() - started

    node = frame["node_id"].to_numpy(dtype=np.int64)
    assignments = pa.table(
        {
            "layer": pa.array(node // atlas.neurons_per_layer, pa.int32()),
            "neuron": pa.array(node % atlas.neurons_per_layer, pa.int32()),
            "cluster_path": pa.array([".".join(map(str, p)) for p in frame["path"]], pa.string()),
            "flow": pa.array(frame["flow"].to_numpy(), pa.float64()),
        }
    ).sort_by([("layer", "ascending"), ("neuron", "ascending")])
    run = {
        "settings": settings.model_dump_json(),
        "method": settings.method,
        "edges_hash": digest,
        "edges": links.num_rows,
        "neurons": assignments.num_rows,
        "graphs_hash": graphs_hash,
        "infomap_version": infomap.__version__,
        "codelength": float(result.codelength),
        "top_modules": int(result.num_top_modules),
        "levels": int(result.num_levels),
        "seconds": seconds,
    }
    batch = Batch(
        wh,
        atlas.name,
        "cluster",
        source=settings.method,
        inputs=lake.Inputs.recording(edges=f"{atlas.name}:{settings.method}"),
        hashes=[digest],
    )
    batch.add("cluster_assignments", assignments)
    batch.add("cluster_runs", pa.Table.from_pylist([run], lake.row_schema("cluster_runs")))
    batch.commit(["cluster_assignments", "cluster_runs"], set())
    console.print(
        f"cluster {atlas.name}: {result.num_top_modules} top modules, {result.num_levels} levels, "
        f"codelength {result.codelength:.4f} in {seconds:.1f}s"
    )
    return {**run, "batch": batch.batch}
