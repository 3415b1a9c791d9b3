"""`circuitlake build`: the one refresh (apply model changes, then process new lake batches)."""

from __future__ import annotations

from circuitlake import duck, project
from circuitlake.settings import Warehouse

LAKE_TAG = "reads_lake"  # models that read new lake batches: restated to pick them up


def ensure_free(wh: Warehouse) -> None:
    """Fail fast, with a one-line error, when another process holds the warehouse file open."""
    if wh.duckdb.exists():
        duck.connect(wh, read_only=False).close()


def build(wh: Warehouse) -> list[str]:
    """Apply model changes, then bring new lake batches in; returns the models restated for new data.

    The same as these two commands in the repo root:
      sqlmesh plan --auto-apply --no-prompts                                # model changes
      sqlmesh plan --auto-apply --no-prompts --restate-model tag:reads_lake # new lake data
    SQLMesh compares code with state and never notices new lake rows, and an interval once run is not
    run again; restating the `reads_lake` models re-evaluates them. They carry earlier batches' rows
    over and aggregate only batches they have not seen, so old raw links are never re-read. Models
    the first plan just rebuilt are not restated again.
    """
    ensure_free(wh)
    ctx = project.context(wh)
    try:
        plan = ctx.plan(auto_apply=True, no_prompts=True, no_diff=True)
        rebuilt = {s.name for s in plan.new_snapshots}
        stale = sorted(m.fqn for m in ctx.models.values() if LAKE_TAG in m.tags and m.fqn not in rebuilt)
        if stale:
            ctx.plan(restate_models=stale, auto_apply=True, no_prompts=True, no_diff=True)
        return stale
    finally:
        ctx.close()
