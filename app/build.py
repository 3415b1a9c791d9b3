"""`circuitlake build`: the one refresh (apply model changes, then process new lake batches)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from circuitlake import batch_tables, duck, lake, locks, project, registry
from circuitlake.jobs import cluster as jobs_cluster
from circuitlake.jobs import search_index
from circuitlake.progress import console
from circuitlake.settings import LOCAL_GATEWAY, Warehouse

AUTO_CLUSTER_SECONDS = 120  # a first clustering estimated longer than this is left to `circuitlake cluster`
LAKE_SCHEMA = "lake"  # the views over the Delta tables
CLUSTERS_TAG = "reads_clusters"  # models that read clustering runs: restated after one
CLERPS_TAG = "reads_clerps"  # models that read graph batches for their clerps only: restated when a new one carries one
BATCH_LAYER = ("append_batches", "upsert_keys")  # materializations whose tables only ever add what is new
# how a build applies a plan: no prompts, no diff; the SQLMesh unit tests and the linter run in `make test`,
# `make lint` and a user's own `sqlmesh plan`, not in every build
APPLY = {"auto_apply": True, "no_prompts": True, "no_diff": True, "skip_tests": True, "skip_linter": True}


def ensure_free(wh: Warehouse) -> None:
    """Fail fast, with a one-line error, when another process holds the warehouse file open (checked
    under the writer lock, for which readers such as `circuitlake serve` let go of the file)."""
    if wh.duckdb.exists():
        with locks.warehouse_lock(wh, "check"):
            duck.connect(wh, read_only=False).close()


def last_build(wh: Warehouse, gateway: str = LOCAL_GATEWAY) -> dict | None:
    """The last successful build on `gateway`: {"root": the warehouse's folder then, "versions": {lake
    table: Delta version}, "retractions": [ids handled], "batches": ["atlas/batch" committed then],
    "finished_at": ISO time, "seconds": duration}, or None before the first."""
    path = wh.built_record_of(gateway)
    built = json.loads(path.read_text()) if path.exists() else {}
    return built if "versions" in built else None


def _record_built(
    wh: Warehouse, gateway: str, versions: dict[str, int], retractions: list[str], started: float, settled: dict | None = None
) -> None:
    """Remember the lake the gateway's tables were last built from (written after a successful build
    only), with the batches committed in it; `settled` is set once the whole build is done (`_settle`)."""
    batches = sorted(f"{m.atlas}/{m.batch}" for m in lake.markers(wh, version=versions["ingest_batches"]))
    _write_record(
        wh,
        gateway,
        {
            "root": str(wh.root),
            "versions": versions,
            "retractions": retractions,
            "batches": batches,
            "seconds": round(time.monotonic() - started, 1),
            "settled": settled,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )


def _write_record(wh: Warehouse, gateway: str, record: dict) -> None:
    """Replace the gateway's build record at once (a reader never sees half of it)."""
    path = wh.built_record_of(gateway)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, sort_keys=True))
    tmp.replace(path)


def _retractions(wh: Warehouse) -> dict[str, str]:
    """Every retraction in the lake: id -> atlas."""
    rows = lake.read(wh, "retractions", ["retraction", "atlas"])
    return dict(zip(rows["retraction"].to_pylist(), rows["atlas"].to_pylist(), strict=False))


def _forget_retracted(ctx, atlases: set[str], rebuilt: set[str]) -> list[str]:
    """Delete the atlases' rows from the batch-layer tables the first plan did not just rebuild (an
    append never removes rows, so retracted batches would stay); returns those models, which the
    build then restates to derive the rows again from the remaining batches."""
    models = sorted(
        m.fqn for m in ctx.models.values() if m.kind.is_custom and m.fqn not in rebuilt and m.kind.materialization in BATCH_LAYER
    )
    tables = [ctx.table_name(fqn, prod=True) for fqn in models]
    batch_tables.forget_atlases(ctx.engine_adapter, tables, sorted(atlases))
    console.print(f"build: batches were retracted from {', '.join(sorted(atlases))}: their batch layer is derived again")
    return models


def _moved(wh: Warehouse, versions: dict[str, int], built: dict | None) -> set[str]:
    """Lake tables whose rows changed since the last build. `ingest_batches` alone does not count: a
    batch that lands rows moves its data tables too (a batch of rejects only changes no model's input);
    nor do maintenance commits (compaction, vacuum)."""
    if built is None:
        return set(versions)
    return {t for t, v in versions.items() if t not in built or (built[t] != v and lake.data_changed(wh, t, built[t]))} - {"ingest_batches"}


def _new_clerps(wh: Warehouse, versions: dict[str, int], built: dict | None) -> bool:
    """Whether a graph batch committed since the last build carries a clerp (told by graph_nodes' Parquet
    statistics). A build after RelP graphs (no clerps) then leaves the clerp readers, and the labels
    built on them, alone; the batches they skip are read with the next batch that carries clerps."""
    if not built or "batches" not in built:
        return True
    before = set(built["batches"])
    new = [m for m in lake.markers(wh, job="graphs", version=versions["ingest_batches"]) if f"{m.atlas}/{m.batch}" not in before]
    return any(not lake.all_null(wh, "graph_nodes", m.atlas, m.batch, "clerp") for m in new)


def _search_inputs_restated(wh: Warehouse, ctx, restated: set[str]) -> bool:
    """Whether restating (or rebuilding) these models may change what the search indexes hold: the labels
    (`stg.neuron_labels` or a model it is built on), or `neurons` when an atlas's universe is 'observed'
    (its units follow its graphs). A build after RelP graphs in grid atlases then skips the indexes'
    fingerprints (a scan of every label: ~1 s at 1.6M units)."""
    watched = {"neuron_labels"} | ({"neurons"} if any(a.universe == "observed" for a in registry.all_atlases(wh)) else set())
    return any(fqn in restated or restated & ctx.dag.upstream(fqn) for fqn in ctx.models if fqn.rsplit(".", 1)[-1].strip('"') in watched)


def _schema(fqn: str) -> str:
    return fqn.split(".")[-2].strip('"')


def _reading(ctx, tables: set[str]) -> set[str]:
    """Models (outside the `lake` views) that read one of these lake tables, directly or through a
    lake view; restating them restates what is built on them."""

    def lake_tables(view: str, seen: set[str]) -> set[str]:
        found = {view.rsplit(".", 1)[-1].strip('"')} & set(lake.TABLES)
        for dep in ctx.models[view].depends_on if view in ctx.models else ():
            if _schema(dep) == LAKE_SCHEMA and dep not in seen:
                seen.add(dep)
                found |= lake_tables(dep, seen)
        return found

    return {
        m.fqn
        for m in ctx.models.values()
        if _schema(m.fqn) != LAKE_SCHEMA and any(lake_tables(dep, set()) & tables for dep in m.depends_on if _schema(dep) == LAKE_SCHEMA)
    }


def _reads_file_lists(ctx) -> bool:
    """Whether the gateway reads the lake as Parquet file lists (`lake_format: parquet_files`, Spark
    without delta-spark): a lake view's file list is fixed when it is created, so the build re-creates
    the views over moved tables. (`delta_scan` and Delta tables read the current version at query time.)"""
    return ctx.config.gateways[ctx.selected_gateway].variables.get("lake_format") == "parquet_files"


def _lake_views(ctx, tables: set[str]) -> set[str]:
    """The lake views over these lake tables."""
    return {m.fqn for m in ctx.models.values() if _schema(m.fqn) == LAKE_SCHEMA and m.fqn.rsplit(".", 1)[-1].strip('"') in tables}


@locks.writes_warehouse("build")
def build(wh: Warehouse, cluster: bool = True, gateway: str = LOCAL_GATEWAY) -> list[str]:
    """Apply model changes, bring new lake batches in, cluster atlases that need it; returns the
    models restated for new data.

    The same as these two commands in the repo root:
      sqlmesh plan --auto-apply --no-prompts                                # model changes
      sqlmesh plan --auto-apply --no-prompts --restate-model tag:reads_lake # new lake data
    SQLMesh compares code with state and never notices new lake rows, and an interval once run is not
    run again; restating the `reads_lake` models re-evaluates them and everything built on them. This
    function restates more precisely: only the models that read a lake table committed to since the
    last build (so a build after a graph ingest leaves the labels alone). Models the first plan just
    rebuilt are not restated again.

    The batch-driven models append partials for new batches only (`append_batches`) and `edges`
    replaces only the keys those touched (`upsert_keys`): a build's data work follows the new batches.
    Which lake tables moved is told by their Delta versions against those of the last build. After a
    retraction (`circuitlake retract`), the retracting atlases' rows are deleted from those tables and
    derived again from the remaining batches: a retraction costs that atlas's share of a full build.

    Clustering is expensive, so only atlases never clustered (or whose cluster settings changed) are
    clustered here, and only when Infomap is estimated to take under AUTO_CLUSTER_SECONDS; a longer
    one is announced with its estimate and left to `circuitlake cluster`, as is re-clustering after
    new data. Last, the search indexes of atlases whose labels changed are rebuilt (jobs/search_index.py).

    A local build with nothing new (no lake commit, the same project, no plan applied since the last
    complete build) answers before SQLMesh loads: the project's fingerprint and the lake's versions tell
    it (`_nothing_new`); it still clusters an atlas that needs it and re-indexes a missing search index.

    On another gateway (`spark`) the same models build there, from the same lake, with a build record
    of their own; clustering and search indexing are left to the local builds whose DuckDB warehouse
    they read, and every lake table counts (a clustering run moves `cluster_runs`).
    """
    started = time.monotonic()
    ensure_free(wh)
    built = last_build(wh, gateway)
    if built is not None and _nothing_new(wh, gateway, built):
        console.print("build: nothing new since the last build (project, lake and SQLMesh state as it left them)")
        _record_built(wh, gateway, built["versions"], built["retractions"], started, built["settled"])
        stale: list[str] = []
        ctx, searched_moved = None, False
    else:
        stale, ctx, searched_moved = _plan(wh, gateway, built, started)
    if gateway != LOCAL_GATEWAY:
        return stale
    clustered = cluster and [a for a in registry.all_atlases(wh) if _cluster_if_quick(wh, a)]
    if clustered:
        refresh_clusters(wh, ctx)
    if searched_moved or clustered or not search_index.on_disk(wh):
        search_index.refresh(wh)
    _settle(wh, gateway)
    return stale


def _plan(wh: Warehouse, gateway: str, built: dict | None, started: float):
    """The SQLMesh part of a build (see `build`): (models restated for new data, the closed context,
    whether what the search indexes hold may have changed)."""
    ctx = project.context(wh, gateway)
    try:
        with console.status("build: applying model changes (sqlmesh plan)"):
            plan = project.plan(ctx, **APPLY)
        rebuilt = {s.name for s in plan.new_snapshots}
        console.print(f"build: {len(rebuilt)} model(s) new or changed")
        versions = lake.versions(wh) if gateway == LOCAL_GATEWAY else lake.versions(wh, tuple(lake.TABLES))
        retractions = _retractions(wh)
        # a warehouse moved (or copied) since its last build: its lake views still read the lake they were
        # created over, so each is created again and what reads them restated
        relocated = built is not None and built.get("root", str(wh.root)) != str(wh.root)
        moved = set(versions) if relocated else _moved(wh, versions, built and built["versions"])
        restate = {fqn for fqn in _reading(ctx, moved) if fqn not in rebuilt}
        if not relocated and "graph_nodes" in moved and not _new_clerps(wh, versions, built):
            restate -= {m.fqn for m in ctx.models.values() if CLERPS_TAG in m.tags}
        if moved and (relocated or _reads_file_lists(ctx)):
            restate |= _lake_views(ctx, moved | {"ingest_batches"}) - rebuilt
        retracted = {atlas for r, atlas in retractions.items() if built and r not in built["retractions"]}
        if retracted:
            restate |= set(_forget_retracted(ctx, retracted, rebuilt))
        stale = sorted(restate)
        if not moved:
            console.print("build: no new lake data since the last build")
        elif stale:
            with console.status(f"build: bringing new lake batches in (restating {len(stale)} model(s))"):
                project.plan(ctx, restate_models=stale, **APPLY)
            names = ", ".join(fqn.rsplit(".", 1)[-1].strip('"') for fqn in stale)
            console.print(f"build: new lake batches processed ({names})")
        searched_moved = "label_embeddings" in moved or _search_inputs_restated(wh, ctx, set(stale) | rebuilt)
        _record_built(wh, gateway, versions, sorted(retractions), started)
    finally:
        ctx.close()
    return stale, ctx, searched_moved


def _settled_mark(wh: Warehouse, gateway: str) -> dict:
    """What a completed build leaves unchanged until something new comes: the project's fingerprint and
    the SQLMesh state file (any plan applied since, by `sqlmesh plan` too, changes its size or mtime)."""
    state = wh.state.stat() if wh.state.exists() else None
    return {"project": project.fingerprint(wh, gateway), "state": [state.st_size, state.st_mtime_ns] if state else None}


def _settle(wh: Warehouse, gateway: str) -> None:
    """Mark the last build complete (its plans, clustering and search indexes all done)."""
    built = last_build(wh, gateway)
    if built is not None:
        _write_record(wh, gateway, built | {"settled": _settled_mark(wh, gateway)})


def _nothing_new(wh: Warehouse, gateway: str, built: dict) -> bool:
    """True when a local build has nothing to do, decided without loading SQLMesh: the last build
    completed, and since then no lake table moved (any commit counts), the project is the same and no
    plan was applied to the warehouse by anyone. `ingest_batches` moving alone does not count (as in
    `_moved`): a clustering run's marker moves it."""
    if gateway != LOCAL_GATEWAY or not built.get("settled"):
        return False
    versions = lake.versions(wh)
    return built["settled"] == _settled_mark(wh, gateway) and all(
        versions[t] == built["versions"].get(t) for t in versions if t != "ingest_batches"
    )


def _cluster_if_quick(wh: Warehouse, atlas: registry.AtlasRecord) -> bool:
    """Cluster an atlas that needs it when that is quick; announce the estimate otherwise. True if clustered."""
    if not jobs_cluster.needs_clustering(wh, atlas):
        return False
    links, seconds = jobs_cluster.estimate(wh, atlas)
    if seconds > AUTO_CLUSTER_SECONDS:
        c = atlas.settings.cluster
        console.print(
            f"build: {atlas.name} is not clustered yet: Infomap on {links:,} links x {c.trials} trials, "
            f"{c.threads} thread(s), would take about {seconds / 60:.0f} min; "
            f"run `circuitlake cluster --atlas {atlas.name}` when convenient"
        )
        return False
    try:
        return jobs_cluster.cluster(wh, atlas.name) is not None
    except locks.AtlasBusy as e:  # the plan is applied: a writer of this atlas only postpones its clustering
        console.print(f"build: {atlas.name} not clustered now ({e}); run `circuitlake cluster --atlas {atlas.name}` later", markup=False)
        return False


@locks.writes_warehouse("cluster (refresh)")
def refresh_clusters(wh: Warehouse, ctx=None) -> None:
    """Bring the latest clustering runs into neurons and clusters (`sqlmesh plan --restate-model
    tag:reads_clusters`), with a build's closed SQLMesh context when given (it reconnects: no second load)."""
    ctx = ctx or project.context(wh)
    try:
        with console.status("build: bringing the clustering runs in (restating reads_clusters models)"):
            project.plan(ctx, restate_models=[f"tag:{CLUSTERS_TAG}"], **APPLY)
    finally:
        ctx.close()
