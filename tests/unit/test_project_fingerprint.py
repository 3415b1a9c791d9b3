"""The project's fingerprint (project.fingerprint): what a build with nothing new is decided by, read without SQLMesh."""

from __future__ import annotations

import shutil

from circuitlake import project
from circuitlake.settings import REPO_ROOT, warehouse


def test_fingerprint_follows_what_a_plan_reads_and_nothing_else(tmp_path, monkeypatch):
    root = tmp_path / "project"
    for folder in (*project.PLANNED, "tests"):
        shutil.copytree(REPO_ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))
    for name in ("sqlmesh_config.yaml", "config.py"):
        shutil.copy(REPO_ROOT / name, root / name)
    monkeypatch.setenv("CIRCUITLAKE_PROJECT", str(root))
    wh = warehouse(tmp_path / "wh")
    first = project.fingerprint(wh, "local")
    assert project.fingerprint(wh, "local") == first  # stable

    (root / "tests" / "test_neurons.yaml").write_text("# a unit test edited\n")
    assert project.fingerprint(wh, "local") == first  # tests do not change a build
    assert project.fingerprint(wh, "spark") != first
    assert project.fingerprint(warehouse(tmp_path / "other"), "local") != first

    model = root / "models" / "neurons.sql"
    model.write_text(model.read_text() + "\n-- edited\n")
    edited = project.fingerprint(wh, "local")
    assert edited != first
    (root / "macros" / "new_macro.py").write_text("# a new macro file\n")
    assert project.fingerprint(wh, "local") != edited
    monkeypatch.setenv("CIRCUITLAKE_MEMORY", "1GB")  # another memory budget: another connection
    assert project.fingerprint(wh, "local") not in (first, edited)
