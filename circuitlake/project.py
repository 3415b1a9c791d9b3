"""The SQLMesh project (the checkout's, the one a wheel ships, or $CIRCUITLAKE_PROJECT), bound to one warehouse."""

from __future__ import annotations

import os
from pathlib import Path

from sqlmesh.core.config import Config
from sqlmesh.core.config.loader import load_config_from_yaml

from circuitlake import __version__, duck, lake
from circuitlake.settings import WAREHOUSE_ENV, Warehouse, budget, project_root, warehouse


def load_config(wh: Warehouse | None = None, project: Path | None = None) -> Config:
    """The project's sqlmesh_config.yaml (default: settings.project_root) for `wh` (default:
    $CIRCUITLAKE_WAREHOUSE or ./warehouse), lake tables ensured."""
    wh = wh or warehouse()
    duck.bootstrap("delta")
    wh.root.mkdir(parents=True, exist_ok=True)
    lake.ensure(wh)
    limits = budget()
    return Config.model_validate(
        load_config_from_yaml(
            (project or project_root()) / "sqlmesh_config.yaml",
            variables={
                "warehouse": str(wh.root),
                "circuitlake_version": __version__,
                "lake_schema_version": lake.SCHEMA_VERSION,
                "memory_limit": limits.memory_limit,
                "threads": str(limits.threads),
            },
        )
    )


def context(wh: Warehouse):
    """A SQLMesh Context over the project's models (settings.project_root) for warehouse `wh`."""
    from sqlmesh import Context

    os.environ[WAREHOUSE_ENV] = str(wh.root)  # config.py and subprocesses see the same warehouse
    return Context(paths=str(project_root()), config=load_config(wh))
