"""`circuitlake init DIR`: a SQLMesh project folder for an installed circuitlake.

The folder gets the project circuitlake runs (settings.project_root): models/, audits/, macros/,
materializations/, prompts/, tests/ (the SQLMesh unit tests), sqlmesh_config.yaml and the config.py shim,
copied so the user may extend them with models of their own, or with `--link` as links to the installed
ones (they follow upgrades). `sqlmesh plan` works inside it; `CIRCUITLAKE_PROJECT=DIR` makes the
`circuitlake` commands use it too. An existing file is never overwritten.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from circuitlake.errors import UserError
from circuitlake.settings import project_root

FOLDERS = ("models", "audits", "macros", "materializations", "linter", "prompts")
FILES = ("sqlmesh_config.yaml", "config.py")


def scaffold(folder: Path, link: bool = False) -> list[str]:
    """Write the project into `folder`; returns what was written."""
    source = project_root()
    taken = [name for name in (*FOLDERS, *FILES, "tests") if (folder / name).exists()]
    if taken:
        raise UserError(f"{folder} already has {', '.join(taken)}: choose an empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in FOLDERS:
        if link:
            (folder / name).symlink_to(source / name, target_is_directory=True)
        else:
            shutil.copytree(source / name, folder / name, ignore=ignore)
    for name in FILES:
        shutil.copy2(source / name, folder / name)
    (folder / "tests").mkdir()
    for unit_test in sorted((source / "tests").glob("test_*.yaml")):
        shutil.copy2(unit_test, folder / "tests" / unit_test.name)
    return [*FOLDERS, *FILES, "tests"]
