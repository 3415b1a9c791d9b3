"""SQLMesh looks for config.py/config.yaml only: this shim loads sqlmesh_config.yaml for the warehouse
named by $CIRCUITLAKE_WAREHOUSE (default ./warehouse)."""

from circuitlake.project import load_config

config = load_config()
