"""The SQLMesh project of this repository, bound to one warehouse."""

from __future__ import annotations

import os

from sqlmesh.core.config import Config
from sqlmesh.core.config.loader import load_config_from_yaml

from circuitlake import __version__, duck, lake
from circuitlake.settings import REPO_ROOT, WAREHOUSE_ENV, Warehouse, budget, warehouse

CONFIG_YAML = REPO_ROOT / "sqlmesh_config.yaml"


def load_config(wh: Warehouse | None = None) -> Config:
    """sqlmesh_config.yaml for `wh` (default: $CIRCUITLAKE_WAREHOUSE or ./warehouse), lake tables ensured."""
    wh = wh or warehouse()
    duck.bootstrap("delta")
    wh.root.mkdir(parents=True, exist_ok=True)
    lake.ensure(wh)
    limits = budget()
    return Config.model_validate(
        load_config_from_yaml(
            CONFIG_YAML,
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
    """A SQLMesh Context over this repository's models for warehouse `wh`."""
    from sqlmesh import Context

    os.environ[WAREHOUSE_ENV] = str(wh.root)  # config.py and subprocesses see the same warehouse
    return Context(paths=str(REPO_ROOT), config=load_config(wh))
