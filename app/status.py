"""`circuitlake status`: what the lake holds, what the warehouse has built, and what needs attention.

Read-only and quick at any size: it reads the lake's small tables (batch markers, cluster runs,
rejects, retractions), Delta versions and file sizes, the last build's record, the last audit
report, and two small warehouse figures (label coverage, clusters staleness) when a build exists.
"Needs attention" (exit 1): lake batches not built yet, a retraction not built yet, clusters stale
or missing while edges exist, graph files ingested but every one rejected, or failed audits in the
last report.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
from rich.table import Table

from circuitlake import duck, lake, registry
from circuitlake.app.build import last_build
from circuitlake.progress import out
from circuitlake.settings import Warehouse


def _atlas_bytes(wh: Warehouse, atlas: str) -> int:
    """Bytes on disk of the atlas's partitions in every lake table (time travel files included until vacuum)."""
    return sum(lake.bytes_on_disk(wh.table(t) / f"atlas={atlas}") for t in lake.TABLES)


def _warehouse_figures(wh: Warehouse) -> dict[str, dict]:
    """Per atlas: label coverage and clustering figures from the published tables; {} before a build."""
    if not wh.duckdb.exists():
        return {}
    con = duck.connect(wh, read_only=True)
    try:
        coverage = con.execute("select atlas, count(label) / count(*) from neurons group by atlas").fetchall()
        meta = con.execute("select atlas, key, value from metadata where key in ('clusters_stale', 'cluster_run', 'relp_edges')").fetchall()
    except duckdb.CatalogException:
        return {}
    finally:
        con.close()
    figures: dict[str, dict] = {}
    for atlas, share in coverage:
        figures.setdefault(atlas, {})["label_coverage"] = round(share, 4)
    for atlas, key, value in meta:
        figures.setdefault(atlas, {})[key] = value
    return figures


def atlas_status(wh: Warehouse, atlas: registry.AtlasRecord, built_batches: set, figures: dict, handled: set[str]) -> dict:
    """One atlas's status and the reasons it needs attention (empty list: none)."""
    markers = lake.markers(wh, atlas.name)
    by_job: dict[str, list[lake.Marker]] = {}
    for m in markers:
        by_job.setdefault(m.job, []).append(m)
    graphs = by_job.get("graphs", [])
    # clustering runs are brought in by `circuitlake cluster` itself, not by a build
    unbuilt = [m.batch for m in markers if m.job != "cluster" and f"{atlas.name}/{m.batch}" not in built_batches]
    labels: dict[str, dict] = {}
    for m in by_job.get("labels", []):  # by batch id: the latest batch is the source's current file
        if not m.landed:  # a file whose every record was rejected: the source kept its labels
            continue
        labels[m.source or ""] = {"source": m.source, "batch": m.batch, "files": m.inputs, "records": m.landed}
    wiring: dict[str, dict] = {}
    for m in by_job.get("wiring", []):
        w = wiring.setdefault(m.source or "", {"source": m.source, "layer_batches": 0})
        w["layer_batches"] += 1
    runs = lake.read(wh, "cluster_runs", ["batch", "top_modules", "edges", "seconds"], [("atlas", "=", atlas.name)]).to_pylist()
    retractions = lake.read(wh, "retractions", ["retraction", "what"], [("atlas", "=", atlas.name)]).to_pylist()
    fig = figures.get(atlas.name, {})
    rejects = lake.read(wh, "rejects", ["job", "file"], [("atlas", "=", atlas.name)])
    rejected_graph_files = {f for j, f in zip(rejects["job"].to_pylist(), rejects["file"].to_pylist(), strict=True) if j == "graphs"}
    status = {
        "atlas": atlas.name,
        "model_id": atlas.model_id,
        "shape": f"{atlas.num_layers} x {atlas.neurons_per_layer}",
        "graph_batches": len(graphs),
        "graphs": sum(m.landed for m in graphs),
        "batches_not_built": len(unbuilt),
        "label_sources": list(labels.values()),
        "label_coverage": fig.get("label_coverage"),
        "min_label_coverage": atlas.min_label_coverage,
        "wiring_sources": list(wiring.values()),
        "relp_edges": int(fig["relp_edges"]) if fig.get("relp_edges") else None,
        "cluster_runs": len(runs),
        "latest_cluster_run": max(runs, key=lambda r: r["batch"]) if runs else None,
        "clusters_stale": fig.get("clusters_stale") == "true",
        "retractions": len(retractions),
        "retractions_not_built": len([r for r in retractions if r["retraction"] not in handled]),
        "rejects": rejects.num_rows,
        "graph_files_rejected": len(rejected_graph_files),
        "lake_bytes": _atlas_bytes(wh, atlas.name),
    }
    attention = []
    if rejected_graph_files and not status["graphs"]:
        attention.append(
            f"every graph file ingested was rejected ({len(rejected_graph_files)} files): "
            'see why with `circuitlake query "select file, reason from lake.rejects"`'
        )
    if unbuilt:
        attention.append(f"{len(unbuilt)} batch(es) not built yet: run `circuitlake build`")
    if status["retractions_not_built"]:
        attention.append("a retraction is not built yet: run `circuitlake build`")
    if status["clusters_stale"]:
        attention.append(f"clusters are stale (graphs landed after clustering): run `circuitlake cluster --atlas {atlas.name}`")
    elif not runs and status["relp_edges"]:
        attention.append(f"not clustered yet: run `circuitlake cluster --atlas {atlas.name}`")
    status["attention"] = attention
    return status


def warehouse_status(wh: Warehouse, atlas: str | None = None) -> dict:
    """Every atlas's status (or one's), the last build and audit, sizes and lake versions."""
    atlases = [registry.get(wh, atlas)] if atlas else registry.all_atlases(wh)
    built = last_build(wh)
    built_batches = set(built.get("batches", [])) if built else set()
    figures = _warehouse_figures(wh)
    handled = set(built["retractions"]) if built else set()
    audit_path = wh.last_audit
    audit = json.loads(audit_path.read_text()) if audit_path.exists() else None
    failed = [a["name"] for a in audit["audits"] if not a["passed"]] if audit else []
    status: dict[str, Any] = {
        "warehouse": str(wh.root),
        "last_build": {k: built[k] for k in ("finished_at", "seconds") if k in built} if built else None,
        "last_audit": {"generated_at": audit["generated_at"], "audits": len(audit["audits"]), "failed": failed} if audit else None,
        "lake_bytes": lake.bytes_on_disk(wh.lake),
        "warehouse_bytes": lake.bytes_on_disk(wh.duckdb),
        "lake_versions": lake.versions(wh),
        "atlases": [atlas_status(wh, a, built_batches, figures, handled) for a in atlases],
    }
    status["attention"] = [f"{a['atlas']}: {why}" for a in status["atlases"] for why in a["attention"]]
    if failed:
        status["attention"].append(f"audits failed in the last report: {', '.join(failed)} (circuitlake audit)")
    return status


def size_text(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def show_status(status: dict) -> None:
    """The status as tables on stdout: the warehouse, then one row per atlas, then what needs attention."""
    build, audit = status["last_build"], status["last_audit"]
    out.print(
        f"warehouse {status['warehouse']}: lake {size_text(status['lake_bytes'])}, warehouse file {size_text(status['warehouse_bytes'])}; "
        f"last build {build['finished_at'] + ' (' + str(build['seconds']) + ' s)' if build else 'never'}; "
        + (
            f"last audit {audit['generated_at']} ({audit['audits'] - len(audit['failed'])}/{audit['audits']} passed)"
            if audit
            else "last audit never"
        )
    )
    shown = Table("", *(a["atlas"] for a in status["atlases"]))  # one column per atlas: fits a narrow terminal

    def row(name: str, cell) -> None:
        shown.add_row(name, *(cell(a) for a in status["atlases"]))

    row("graphs (batches)", lambda a: f"{a['graphs']:,} ({a['graph_batches']})")
    row("not built (batches, retractions)", lambda a: f"{a['batches_not_built']}, {a['retractions_not_built']}")
    row("label sources", lambda a: ", ".join(s["source"] for s in a["label_sources"]) or "-")
    row("label coverage", lambda a: "-" if a["label_coverage"] is None else f"{a['label_coverage']:.1%}")
    row("wiring sources", lambda a: ", ".join(w["source"] for w in a["wiring_sources"]) or "-")
    row("relp edges", lambda a: "-" if a["relp_edges"] is None else f"{a['relp_edges']:,}")
    row(
        "clusters",
        lambda a: (
            "-"
            if not a["latest_cluster_run"]
            else "stale"
            if a["clusters_stale"]
            else f"{a['latest_cluster_run']['top_modules']} top modules"
        ),
    )
    row("rejected records", lambda a: str(a["rejects"]))
    row("lake size", lambda a: size_text(a["lake_bytes"]))
    out.print(shown)
    for line in status["attention"]:
        out.print(f"needs attention: {line}", markup=False)
