"""`circuitlake build`: the one refresh (apply model changes, then process new lake batches)."""

from __future__ import annotations

from circuitlake import duck, project, registry
from circuitlake.progress import console
from circuitlake.settings import Warehouse

LAKE_TAG = "reads_lake"  # models that read new lake batches: restated to pick them up
CLUSTERS_TAG = "reads_clusters"  # models that read clustering runs: restated after one


def ensure_free(wh: Warehouse) -> None:
    """Fail fast, with a one-line error, when another process holds the warehouse file open."""
    if wh.duckdb.exists():
        duck.connect(wh, read_only=False).close()


def build(wh: Warehouse, cluster: bool = True) -> list[str]:
    """Apply model changes, bring new lake batches in, cluster atlases that need it; returns the
    models restated for new data.

    The same as these two commands in the repo root:
      sqlmesh plan --auto-apply --no-prompts                                # model changes
      sqlmesh plan --auto-apply --no-prompts --restate-model tag:reads_lake # new lake data
    SQLMesh compares code with state and never notices new lake rows, and an interval once run is not
    run again; restating the `reads_lake` models re-evaluates them. They carry earlier batches' rows
    over and aggregate only batches they have not seen, so old raw links are never re-read. Models
    the first plan just rebuilt are not restated again.

    Clustering is expensive, so only atlases never clustered (or whose cluster settings changed) are
    clustered here; re-clustering after new data is explicit (`circuitlake cluster`).
    """
    ensure_free(wh)
    ctx = project.context(wh)
    try:
        with console.status("build: applying model changes (sqlmesh plan)"):
            plan = ctx.plan(auto_apply=True, no_prompts=True, no_diff=True)
        rebuilt = {s.name for s in plan.new_snapshots}
        console.print(f"build: {len(rebuilt)} model(s) new or changed")
        stale = sorted(m.fqn for m in ctx.models.values() if LAKE_TAG in m.tags and m.fqn not in rebuilt)
        if stale:
            with console.status(f"build: bringing new lake batches in (restating {len(stale)} reads_lake models)"):
                ctx.plan(restate_models=stale, auto_apply=True, no_prompts=True, no_diff=True)
            names = ", ".join(fqn.rsplit(".", 1)[-1].strip('"') for fqn in stale)
            console.print(f"build: new lake batches processed ({names})")
    finally:
        ctx.close()
    if cluster:
        from jobs.cluster import cluster as run_cluster, needs_clustering

        if [a for a in registry.all_atlases(wh) if needs_clustering(wh, a) and run_cluster(wh, a.atlas)]:
            refresh_clusters(wh)
    return stale


def refresh_clusters(wh: Warehouse) -> None:
    """Bring the latest clustering runs into neurons and clusters (`sqlmesh plan --restate-model tag:reads_clusters`)."""
    ctx = project.context(wh)
    try:
        with console.status("build: bringing the clustering runs in (restating reads_clusters models)"):
            ctx.plan(restate_models=[f"tag:{CLUSTERS_TAG}"], auto_apply=True, no_prompts=True, no_diff=True)
    finally:
        ctx.close()
