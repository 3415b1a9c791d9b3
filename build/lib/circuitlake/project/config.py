"""SQLMesh looks for config.py/config.yaml only: this shim loads the sqlmesh_config.yaml beside it for the
warehouse named by $CIRCUITLAKE_WAREHOUSE (default ./warehouse)."""

from pathlib import Path

from circuitlake.project import load_config

config = load_config(project=Path(__file__).resolve().parent)
