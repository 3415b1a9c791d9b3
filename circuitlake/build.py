"""`circuitlake build`: the one refresh (apply model changes and process new lake batches)."""

from __future__ import annotations

from circuitlake import duck, project
from circuitlake.settings import Warehouse


def ensure_free(wh: Warehouse) -> None:
    """Fail fast, with a one-line error, when another process holds the warehouse file open."""
    if wh.duckdb.exists():
        duck.connect(wh, read_only=False).close()


def build(wh: Warehouse) -> None:
    """Equivalent to `sqlmesh plan --auto-apply --no-prompts --run --ignore-cron` in the repo root.

    Plain `sqlmesh plan` only compares code with state and never notices new lake data; `--run
    --ignore-cron` also evaluates the batch-driven incremental models, so new batches are aggregated
    (old batches' raw links are not re-read) and the published tables refreshed.
    """
    ensure_free(wh)
    ctx = project.context(wh)
    try:
        ctx.plan(auto_apply=True, no_prompts=True, run=True, ignore_cron=True, no_diff=True)
    finally:
        ctx.close()
