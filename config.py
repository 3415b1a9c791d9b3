"""SQLMesh looks for config.py/config.yaml only: this shim loads the sqlmesh_config.yaml beside it for the
warehouse named by $CIRCUITLAKE_WAREHOUSE (default ./warehouse), with the gateway of `sqlmesh --gateway
NAME` (else $CIRCUITLAKE_GATEWAY, else local): SQLMesh connects to every gateway a config holds."""

import sys
from pathlib import Path

from circuitlake.project import load_config


def _cli_gateway(argv: list[str]) -> str | None:
    """The value of sqlmesh's `--gateway NAME` / `--gateway=NAME` option, if given."""
    for i, arg in enumerate(argv):
        if arg == "--gateway" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--gateway="):
            return arg.split("=", 1)[1]
    return None


config = load_config(project=Path(__file__).resolve().parent, gateway=_cli_gateway(sys.argv))
