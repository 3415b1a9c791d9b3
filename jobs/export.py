"""`circuitlake export`: one atlas as a standalone DuckDB file in the research pipeline's table layout.

The research code and ARTIFACTS.md's queries read the file unchanged: no `atlas` column, no schema
prefix, no extension, one edge method per file. Layouts (the research pipeline's `circuits/database.py`):
`circuitdatabase` (Llama/OLMo: 18 neuron columns), `qwen` (13 neuron columns), `circuitlake` (our own
columns, DOUBLE statistics, the edges' method kept). The copy runs inside DuckDB from the warehouse
attached read-only (INSERT ... SELECT, streaming and spilling), never through Python memory. The file is
written under a temporary name and renamed when complete, so an interrupted export leaves nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from circuitlake import __version__, duck, registry
from circuitlake.errors import UserError
from circuitlake.settings import Warehouse

LAYOUTS = ("circuitdatabase", "qwen", "circuitlake")
METHODS = ("relp", "weight_graph")

# column name -> research DDL type, in the research order
NEURONS_CIRCUITDATABASE = {
    "layer": "INTEGER NOT NULL",
    "neuron": "INTEGER NOT NULL",
    "feature_id": "INTEGER",
    "unit_type": "VARCHAR",
    "label": "VARCHAR",
    "input_label": "VARCHAR",
    "output_label": "VARCHAR",
    "description": "VARCHAR",
    "max_activation": "FLOAT",
    "num_exemplars": "INTEGER",
    "appearance_count": "INTEGER",
    "output_norm": "FLOAT",
    "cluster_path": "VARCHAR",
    "top_cluster": "INTEGER",
    "sub_module": "INTEGER",
    "subsub_module": "INTEGER",
    "hierarchy_depth": "INTEGER",
    "infomap_flow": "FLOAT",
}
QWEN_NEURON_COLUMNS = (
    "layer",
    "neuron",
    "feature_id",
    "label",
    "description",
    "max_activation",
    "num_exemplars",
    "cluster_path",
    "top_cluster",
    "sub_module",
    "subsub_module",
    "hierarchy_depth",
    "infomap_flow",
)
EDGES = {
    "src_layer": "INTEGER NOT NULL",
    "src_neuron": "INTEGER NOT NULL",
    "tgt_layer": "INTEGER NOT NULL",
    "tgt_neuron": "INTEGER NOT NULL",
    "count": "INTEGER",
    "weight_sum": "FLOAT",
    "weight_abs_sum": "FLOAT",
    "weight_sq_sum": "FLOAT",
    "weight_min": "FLOAT",
    "weight_max": "FLOAT",
    "mean_weight": "FLOAT",
    "mean_abs_weight": "FLOAT",
}
CLUSTERS = {
    "cluster_path": "VARCHAR",
    "level": "INTEGER",
    "top_cluster": "INTEGER",
    "sub_module": "INTEGER",
    "subsub_module": "INTEGER",
    "size": "INTEGER",
    "layer_min": "INTEGER",
    "layer_max": "INTEGER",
    "median_layer": "FLOAT",
}
INDEXES = {
    "idx_neurons_pk": "neurons (layer, neuron)",
    "idx_neurons_cluster": "neurons (top_cluster)",
    "idx_neurons_path": "neurons (cluster_path)",
    "idx_neurons_label": "neurons (label)",
    "idx_edges_src": "edges (src_layer, src_neuron)",
    "idx_edges_tgt": "edges (tgt_layer, tgt_neuron)",
    "idx_clusters_top": "clusters (top_cluster)",
    "idx_clusters_level": "clusters (level)",
}


@dataclass
class ExportReport:
    path: Path
    layout: str
    method: str
    neurons: int
    edges: int
    clusters: int


def research_ddl(layout: str) -> dict[str, dict[str, str]]:
    """Table -> {column: type} of a research layout."""
    neurons = NEURONS_CIRCUITDATABASE
    if layout == "qwen":
        neurons = {c: NEURONS_CIRCUITDATABASE[c] for c in QWEN_NEURON_COLUMNS}
    return {"neurons": neurons, "edges": EDGES, "clusters": CLUSTERS, "metadata": {"key": "VARCHAR", "value": "VARCHAR"}}


def _create(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str], key: str | None) -> None:
    body = ", ".join(f'"{c}" {t}' for c, t in columns.items())
    con.execute(f"create table {table} ({body}{f', primary key ({key})' if key else ''})")


def default_method(con: duckdb.DuckDBPyConnection, atlas: str) -> str:
    """relp when the atlas has RelP edges, else weight_graph."""
    found = duck.scalar(con, "select count(*) from circuitlake.main.edges where atlas = ? and method = 'relp'", [atlas])
    return "relp" if found else "weight_graph"


def _edges_sql(top_k: int | None) -> str:
    """Parameters (atlas, method[, k]): the atlas's edges of one method, optionally the top k downstream
    edges per source neuron by mean |weight| (the Llama atlas's "top-10 downstream edges per neuron")."""
    keep = "qualify row_number() over (partition by src_layer, src_neuron order by mean_abs_weight desc, tgt_layer, tgt_neuron) <= $3"
    return f"select * from circuitlake.main.edges where atlas = $1 and method = $2 {keep if top_k else ''}"


def _metadata(con, atlas: registry.AtlasRecord, wh: Warehouse, layout: str, method: str, top_k: int | None) -> list[tuple[str, str]]:
    meta = dict(con.execute("select key, value from circuitlake.main.metadata where atlas = ?", [atlas.name]).fetchall())
    counts = {t: duck.scalar(con, f"select count(*) from {t}") for t in ("neurons", "edges", "clusters")}
    sources = [
        f"{job}:{source or ''}:{batches} batch(es)"
        for job, source, batches in con.execute(
            "select job, source, count(*) from circuitlake.lake.ingest_batches where atlas = ? group by all order by all", [atlas.name]
        ).fetchall()
    ]
    built, audit = wh.built_record, wh.last_audit
    audits = json.loads(audit.read_text())["audits"] if audit.exists() else []
    rows = {
        # the research files' keys
        "model": atlas.model_id,
        "num_layers": str(atlas.num_layers),
        "neurons_per_layer": str(atlas.neurons_per_layer),
        "total_neurons": str(counts["neurons"]),
        "total_edges": str(counts["edges"]),
        "total_clusters": str(counts["clusters"]),
        "min_edge_count": str(atlas.relp_min_count if method == "relp" else 1),
        "edge_method": method + (f" (top {top_k} downstream edges per neuron)" if top_k else ""),
        "sources": "; ".join(sources),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        # ours
        "atlas": atlas.name,
        "layout": layout,
        "circuitlake_version": __version__,
        "lake_table_versions": json.dumps(json.loads(built.read_text()).get("versions", {}), sort_keys=True) if built.exists() else "",
        "audits": f"{sum(a['passed'] for a in audits)} of {len(audits)} passed" if audits else "not run",
        "audit_results": json.dumps({a["name"]: a["passed"] for a in audits}, sort_keys=True),
    }
    keep = ("graphs", "lake_hash", "graphs_hash", "cluster_run", "cluster_codelength", "build_time", "lake_schema_version")
    rows |= {f"build_{k}" if k == "graphs" else k: meta[k] for k in keep if meta.get(k) is not None}
    return sorted(rows.items())


def export(
    wh: Warehouse, atlas_name: str | None, out: Path, layout: str, method: str | None = None, top_k: int | None = None, force: bool = False
) -> ExportReport:
    """Write the atlas to `out` in `layout`; refuses an existing file unless `force`."""
    if layout not in LAYOUTS:
        raise UserError(f"--layout {layout!r}: one of {', '.join(LAYOUTS)}")
    if method is not None and method not in METHODS:
        raise UserError(f"--method {method!r}: one of {', '.join(METHODS)}")
    if out.exists() and not force:
        raise UserError(f"{out} exists: pass --force to replace it")
    atlas = registry.resolve(wh, atlas_name)
    if not wh.duckdb.exists():
        raise UserError(f"{wh.duckdb} does not exist yet: run `circuitlake build` first")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    # the warehouse opened read-only (its views name their catalog), the new file attached and made current
    con = duck.load(duck.connect(wh, read_only=True), "delta")
    try:
        con.execute(f"attach {duck.sql_string(partial)} as export_target (read_write)")
        con.execute("use export_target")
        method = method or default_method(con, atlas.name)
        params = [atlas.name, method, *([top_k] if top_k else [])]
        one = [atlas.name]
        if layout == "circuitlake":
            con.execute(
                "create table neurons as select * exclude (atlas) from circuitlake.main.neurons where atlas = ? order by layer, neuron",
                one,
            )
            con.execute(f"create table edges as select * exclude (atlas, partials_seq) from ({_edges_sql(top_k)}) order by all", params)
            con.execute(
                "create table clusters as select * exclude (atlas) from circuitlake.main.clusters where atlas = ? order by cluster_path",
                one,
            )
            con.execute("create table metadata (key varchar primary key, value varchar)")
        else:
            ddl = research_ddl(layout)
            _create(con, "neurons", ddl["neurons"], "layer, neuron")
            _create(con, "edges", ddl["edges"], None)
            _create(con, "clusters", ddl["clusters"], None)
            _create(con, "metadata", ddl["metadata"], "key")
            columns = ", ".join(ddl["neurons"])
            con.execute(f"insert into neurons select {columns} from circuitlake.main.neurons where atlas = ? order by layer, neuron", one)
            columns = ", ".join(EDGES)
            con.execute(
                f"insert into edges select {columns} from ({_edges_sql(top_k)}) order by src_layer, src_neuron, tgt_layer, tgt_neuron",
                params,
            )
            columns = ", ".join(CLUSTERS)
            con.execute(f"insert into clusters select {columns} from circuitlake.main.clusters where atlas = ? order by cluster_path", one)
        con.executemany("insert into metadata values (?, ?)", _metadata(con, atlas, wh, layout, method, top_k))
        for name, on in INDEXES.items():
            con.execute(f"create index {name} on {on}")
        report = ExportReport(
            out, layout, method, *(duck.scalar(con, f"select count(*) from {t}") for t in ("neurons", "edges", "clusters"))
        )
        con.execute("checkpoint export_target")
        con.execute("use circuitlake")
        con.execute("detach export_target")
    finally:
        con.close()
    partial.replace(out)
    return report


def infomap_json(wh: Warehouse, atlas_name: str | None, out: Path) -> int:
    """The research pipeline's Infomap assignments file: {"assignments": {"L{layer}/{neuron}": {path, top,
    sub, subsub, depth, flow}}}, streamed to `out`; returns the neurons written."""
    atlas = registry.resolve(wh, atlas_name)
    con = duck.connect(wh, read_only=True)
    written = 0
    tmp = out.with_name(out.name + ".partial")
    try:
        reader = con.execute(
            """select layer, neuron, cluster_path, top_cluster, sub_module, subsub_module, hierarchy_depth, infomap_flow
               from neurons where atlas = ? and cluster_path is not null order by layer, neuron""",
            [atlas.name],
        ).to_arrow_reader(100_000)
        with tmp.open("w") as f:
            f.write('{"assignments": {')
            for chunk in reader:
                for r in chunk.to_pylist():
                    entry = {
                        "path": r["cluster_path"],
                        "top": r["top_cluster"],
                        "sub": r["sub_module"],
                        "subsub": r["subsub_module"],
                        "depth": r["hierarchy_depth"],
                        "flow": r["infomap_flow"],
                    }
                    f.write(("," if written else "") + f'"L{r["layer"]}/{r["neuron"]}": ' + json.dumps(entry))
                    written += 1
            f.write("}}\n")
    finally:
        con.close()
    tmp.replace(out)
    return written
