"""`circuitlake build`: the one refresh (apply model changes, then process new lake batches)."""

from __future__ import annotations

import json

from circuitlake import duck, lake, project, registry
from jobs import cluster as jobs_cluster
from circuitlake.progress import console
from circuitlake.settings import Warehouse

AUTO_CLUSTER_SECONDS = 120  # a first clustering estimated longer than this is left to `circuitlake cluster`
LAKE_TAG = "reads_lake"  # models that read new lake batches: restated to pick them up
CLUSTERS_TAG = "reads_clusters"  # models that read clustering runs: restated after one


def ensure_free(wh: Warehouse) -> None:
    """Fail fast, with a one-line error, when another process holds the warehouse file open."""
    if wh.duckdb.exists():
        duck.connect(wh, read_only=False).close()


def _built_versions(wh: Warehouse) -> dict | None:
    path = wh.root / "built_lake_versions.json"
    return json.loads(path.read_text()) if path.exists() else None


def _record_built(wh: Warehouse, versions: dict[str, int]) -> None:
    """Remember the lake the warehouse was last built from (written after a successful build only)."""
    path = wh.root / "built_lake_versions.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(versions, sort_keys=True))
    tmp.replace(path)


def build(wh: Warehouse, cluster: bool = True) -> list[str]:
    """Apply model changes, bring new lake batches in, cluster atlases that need it; returns the
    models restated for new data.

    The same as these two commands in the repo root:
      sqlmesh plan --auto-apply --no-prompts                                # model changes
      sqlmesh plan --auto-apply --no-prompts --restate-model tag:reads_lake # new lake data
    SQLMesh compares code with state and never notices new lake rows, and an interval once run is not
    run again; restating the `reads_lake` models re-evaluates them. Models the first plan just rebuilt
    are not restated again.

    The batch-driven models append partials for new batches only (`append_batches`) and `edges`
    replaces only the keys those touched (`upsert_keys`): a build's data work follows the new batches.
    When no lake table moved since the last build (Delta versions compared), nothing is restated.

    Clustering is expensive, so only atlases never clustered (or whose cluster settings changed) are
    clustered here, and only when Infomap is estimated to take under AUTO_CLUSTER_SECONDS; a longer
    one is announced with its estimate and left to `circuitlake cluster`, as is re-clustering after
    new data.
    """
    ensure_free(wh)
    ctx = project.context(wh)
    try:
        with console.status("build: applying model changes (sqlmesh plan)"):
            plan = ctx.plan(auto_apply=True, no_prompts=True, no_diff=True)
        rebuilt = {s.name for s in plan.new_snapshots}
        console.print(f"build: {len(rebuilt)} model(s) new or changed")
        versions = lake.versions(wh)
        unchanged = versions == _built_versions(wh)
        stale = [] if unchanged else sorted(
            m.fqn for m in ctx.models.values() if LAKE_TAG in m.tags and m.fqn not in rebuilt)
        if unchanged:
            console.print("build: no new lake data since the last build")
        elif stale:
            with console.status(f"build: bringing new lake batches in (restating {len(stale)} reads_lake models)"):
                ctx.plan(restate_models=stale, auto_apply=True, no_prompts=True, no_diff=True)
            names = ", ".join(fqn.rsplit(".", 1)[-1].strip('"') for fqn in stale)
            console.print(f"build: new lake batches processed ({names})")
        _record_built(wh, versions)
    finally:
        ctx.close()
    if cluster and [a for a in registry.all_atlases(wh) if _cluster_if_quick(wh, a)]:
        refresh_clusters(wh)
    return stale


def _cluster_if_quick(wh: Warehouse, atlas: registry.Atlas) -> bool:
    """Cluster an atlas that needs it when that is quick; announce the estimate otherwise. True if clustered."""
    if not jobs_cluster.needs_clustering(wh, atlas):
        return False
    links, seconds = jobs_cluster.estimate(wh, atlas)
    if seconds > AUTO_CLUSTER_SECONDS:
        c = atlas.settings.cluster
        console.print(f"build: {atlas.atlas} is not clustered yet: Infomap on {links:,} links x {c.trials} trials, "
                      f"{c.threads} thread(s), would take about {seconds / 60:.0f} min; "
                      f"run `circuitlake cluster --atlas {atlas.atlas}` when convenient")
        return False
    return jobs_cluster.cluster(wh, atlas.atlas) is not None


def refresh_clusters(wh: Warehouse) -> None:
    """Bring the latest clustering runs into neurons and clusters (`sqlmesh plan --restate-model tag:reads_clusters`)."""
    ctx = project.context(wh)
    try:
        with console.status("build: bringing the clustering runs in (restating reads_clusters models)"):
            ctx.plan(restate_models=[f"tag:{CLUSTERS_TAG}"], auto_apply=True, no_prompts=True, no_diff=True)
    finally:
        ctx.close()
