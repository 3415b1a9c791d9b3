"""The SQLMesh project (the checkout's, the one a wheel ships, or $CIRCUITLAKE_PROJECT), bound to one warehouse."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from circuitlake import __version__, duck, lake
from circuitlake.errors import UserError
from circuitlake.settings import GATEWAY_ENV, Warehouse, budget, project_root, warehouse

if TYPE_CHECKING:
    from sqlmesh.core.config import Config


def _sqlmesh() -> None:
    """Import SQLMesh when a config or a context is asked for (a second of imports a build with nothing
    new does without). Its loader forks worker processes; a fork of a process whose deltalake (tokio)
    threads are running can die at random ("A process in the process pool was terminated abruptly"):
    it loads in-process."""
    from sqlmesh.core import constants

    constants.MAX_FORK_WORKERS = 1


def load_config(wh: Warehouse | None = None, project: Path | None = None, gateway: str | None = None) -> Config:
    """The project's sqlmesh_config.yaml (default: settings.project_root) for `wh` (default:
    $CIRCUITLAKE_WAREHOUSE or ./warehouse), with one gateway: `gateway`, else $CIRCUITLAKE_GATEWAY, else
    the file's default. SQLMesh opens a connection to every gateway it is given, so the others are left
    out: a DuckDB build never starts Spark (nor needs pyspark). No side effects: nothing is created or
    installed (the DuckDB connection installs `delta` from its pip package's file; `prepare` makes the lake)."""
    _sqlmesh()
    from sqlmesh.core.config import Config
    from sqlmesh.core.config.loader import load_config_from_yaml

    wh = wh or warehouse()
    limits = budget()
    # the YAML is rendered as text before it is parsed: paths go in as placeholders and are put in the
    # parsed values, so a warehouse path with a quote, a '$' or a space is never YAML or Jinja
    paths = {
        "@@warehouse@@": str(wh.root),
        "@@spill@@": str(wh.spill),
        "@@delta_extension@@": duck.sql_string(duck.extension_file("delta")),  # INSTALL/LOAD '<file>' (SQL)
    }
    rendered = load_config_from_yaml(
        (project or project_root()) / "sqlmesh_config.yaml",
        variables={
            "warehouse": "@@warehouse@@",
            "spill": "@@spill@@",
            "delta_extension": "@@delta_extension@@",
            "circuitlake_version": __version__,
            "lake_schema_version": lake.SCHEMA_VERSION,
            "memory_limit": limits.memory_limit,
            "threads": str(limits.threads),
        },
    )
    chosen = gateway or os.environ.get(GATEWAY_ENV) or rendered["default_gateway"]
    if chosen not in rendered["gateways"]:
        raise UserError(f"no gateway '{chosen}' in sqlmesh_config.yaml: choose one of {', '.join(rendered['gateways'])}")
    one = rendered | {"gateways": {chosen: rendered["gateways"][chosen]}, "default_gateway": chosen}
    return _config_class().model_validate(_put_paths(one, paths)).with_fingerprint(Config.model_validate(one).fingerprint)


@functools.cache
def _config_class() -> Any:  # a subclass of sqlmesh's Config, made when SQLMesh is first imported
    """SQLMesh's Config whose `fingerprint` is that of the config before the warehouse's paths are put in.
    SQLMesh keys its model cache (`.cache/` of the project) by that fingerprint; the models never read
    those paths (the lake's is asked of the engine, macros/lake.py), so every warehouse's first load is
    served from the cache instead of parsing and rendering the project again."""
    from pydantic import PrivateAttr
    from sqlmesh.core.config import Config

    class WarehouseConfig(Config):
        _template_fingerprint: str = PrivateAttr(default="")

        def with_fingerprint(self, fingerprint: str) -> WarehouseConfig:
            self._template_fingerprint = fingerprint
            return self

        @property
        def fingerprint(self) -> str:
            return self._template_fingerprint or super().fingerprint

    return WarehouseConfig


def _put_paths(value, paths: dict[str, str]):
    """`value` (parsed YAML) with each placeholder of `paths` replaced by its path, in every string."""
    if isinstance(value, dict):
        return {k: _put_paths(v, paths) for k, v in value.items()}
    if isinstance(value, list):
        return [_put_paths(v, paths) for v in value]
    if isinstance(value, str):
        for placeholder, path in paths.items():
            value = value.replace(placeholder, path)
    return value


PLANNED = ("models", "macros", "audits", "materializations")  # the folders a plan reads (not tests/, linter/, prompts/)


def fingerprint(wh: Warehouse, gateway: str) -> str:
    """Changes whenever a plan for `wh` on `gateway` could: the project's models, macros, audits and
    materializations, its sqlmesh_config.yaml and config.py, the warehouse, the memory budget and the
    circuitlake version. Read without loading SQLMesh (a few ms): a build with nothing new answers
    from it and the lake's versions."""
    root = project_root()
    files = sorted(f for part in PLANNED for f in (root / part).rglob("*") if f.is_file() and "__pycache__" not in f.parts)
    files += [root / name for name in ("sqlmesh_config.yaml", "config.py") if (root / name).is_file()]
    digest = hashlib.sha256(f"{__version__}\0{lake.SCHEMA_VERSION}\0{wh.root}\0{gateway}\0{budget()}".encode())
    for f in files:
        digest.update(f"\0{f.relative_to(root)}\0".encode() + f.read_bytes())
    return digest.hexdigest()


def prepare(wh: Warehouse, gateway: str) -> None:
    """What a plan on `gateway` needs on disk: the lake's tables (created when missing, refused when of
    an older schema) and, for Spark, its folder (tables, metastore, state)."""
    lake.ensure(wh)
    if gateway == "spark":
        (wh.root / "spark").mkdir(exist_ok=True)


@functools.cache
def _without_unit_tests() -> type:
    """SQLMesh's loader, without the project's YAML unit tests (tests/test_*.yaml): parsing them is a fifth
    of loading the project (measured), and a build skips them (they run in `make test` and in a user's
    own `sqlmesh plan`)."""
    from sqlmesh.core.loader import SqlMeshLoader

    class WithoutUnitTests(SqlMeshLoader):
        def load_model_tests(self) -> list:
            return []

    return WithoutUnitTests


def context(wh: Warehouse, gateway: str | None = None, unit_tests: bool = False):
    """A SQLMesh Context over the project's models (settings.project_root) for warehouse `wh`, on
    `gateway` (default: $CIRCUITLAKE_GATEWAY, else local DuckDB); the lake prepared for it. The project's
    unit tests are loaded only with `unit_tests` (`ctx.test()` needs them)."""
    from sqlmesh import Context

    config = load_config(wh, gateway=gateway)
    if not unit_tests:
        config = config.model_copy(update={"loader": _without_unit_tests()})
    prepare(wh, config.default_gateway)
    return Context(config={project_root().absolute(): config})  # as given: a Config passed alone is copied into the base class


def plan(ctx, **plan_args) -> Any:
    """`ctx.plan(**plan_args)`, except that a model or audit failing while the plan is applied raises a
    PlanError naming each failed model with the start of its cause: SQLMesh's own says only "Plan
    application failed." (its console prints the causes, where a caller may not look: captured by a
    test runner, or in a CI log cut short)."""
    from sqlmesh.utils.errors import PlanError

    failed: list = []
    shown = ctx.console.log_failed_models

    def record(errors: list) -> None:
        failed.extend(errors)
        shown(errors)

    ctx.console.log_failed_models = record  # the console is SQLMesh's, shared: restored below
    try:
        return ctx.plan(**plan_args)
    except PlanError as e:
        if not failed:
            raise
        raise PlanError(f"{str(e).rstrip('.')}: {'; '.join(_failure(x) for x in failed)}") from e
    finally:
        del ctx.console.log_failed_models


def _failure(error) -> str:
    """'<model>: <its cause, on one line, cut at 300 characters>' for a failed SQLMesh node; a failed
    audit is named with the number of rows it found."""
    node = str(getattr(error.node, "snapshot_name", None) or getattr(error.node, "name", error.node)).replace('"', "")
    cause = error.__cause__ or error
    audits = getattr(cause, "errors", None)
    if audits:
        return f"{node}: audits failed: " + ", ".join(f"{a.audit_name} ({a.count} rows)" for a in audits)
    text = " ".join(f"{type(cause).__name__}: {cause}".split())
    return f"{node}: {text[:300]}"
