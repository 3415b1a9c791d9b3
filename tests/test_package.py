"""`pip install circuitlake` from a built wheel, outside the repository: everything under the circuitlake
namespace, the SQLMesh project shipped with it, and the demo (the one `make test` runs), `circuitlake init`
and `sqlmesh` working there."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest
from conftest import ARTIFACTS

from circuitlake.settings import REPO_ROOT

DEMO_LOG = ARTIFACTS / "demo.log"  # `make test` shows it (Makefile DEMO_LOG)


@pytest.mark.package
def test_wheel_installed_in_a_fresh_venv_runs_the_demo_and_sqlmesh(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO_ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)],
        check=True,
        cwd=tmp_path,
    )
    wheel = next(dist.glob("circuitlake-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"circuitlake", "circuitlake-0.1.0.dist-info"}  # no top-level ingest, jobs, app
    for shipped in (
        "circuitlake/ingest/graphs.py",
        "circuitlake/jobs/cluster.py",
        "circuitlake/app/cli.py",
        "circuitlake/project/config.py",
        "circuitlake/app/explorer/templates/neuron.html",  # the explorer's pages and bundled assets
        "circuitlake/app/explorer/static/cytoscape.min.js",
    ):
        assert shipped in names, shipped
    for folder in ("models", "audits", "macros", "materializations", "prompts", "tests"):
        assert any(n.startswith(f"circuitlake/project/{folder}/") for n in names), folder

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # uv installs into it: no pip needed
    # the wheel and its dependencies as pinned, resolved by uv (a minute faster than pip); no torch: the demo needs none
    uv = [sys.executable, "-m", "uv", "pip", "install", "-q", "--python", str(venv / "bin" / "python")]
    subprocess.run([*uv, "-c", str(REPO_ROOT / "constraints.txt"), str(wheel)], check=True, cwd=tmp_path)

    work = tmp_path / "elsewhere"  # no checkout in sight: cwd, PYTHONPATH and the warehouse all outside the repo
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CIRCUITLAKE_", "PYTHON", "VIRTUAL_ENV", "MAKE", "MFLAGS"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"

    def cli(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(["circuitlake", *args], cwd=work, env={**env, **extra}, capture_output=True, text=True, timeout=900)

    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import circuitlake, circuitlake.app.cli as c; print(c.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert str(venv) in where.stdout and str(REPO_ROOT) not in where.stdout, where.stdout + where.stderr
    # the demo as `make demo` runs it (its `demo-steps`), with this venv's circuitlake, everything written under
    # `work`: this is how `make test` runs the demo; it shows the output kept here (the audit report among it)
    demo = subprocess.run(
        ["make", "--no-print-directory", "-f", str(REPO_ROOT / "Makefile"), "demo-steps", f"BIN={venv / 'bin'}", "DEMO_DIR=."],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
    )
    DEMO_LOG.parent.mkdir(parents=True, exist_ok=True)
    DEMO_LOG.write_text(demo.stdout)
    assert demo.returncode == 0, demo.stdout[-3000:]
    assert "18 of 18 audits passed" in (work / "audit_report.md").read_text()
    assert "<html" in (work / "atlas_report.html").read_text()[:200].lower()
    searched = demo.stdout.split('search "aspirin dosing"', 1)[1].split("neuron 1_10_3", 1)
    assert "aspirin dosing" in searched[0] and "L1/F10 of sample-clt" in searched[1]  # the hits, then the feature card

    # a project folder: sqlmesh works inside it against the same warehouse, and the CLI can use it
    assert cli("init", "proj").returncode == 0
    assert (work / "proj" / "models" / "neurons.sql").exists() and (work / "proj" / "config.py").exists()
    plan = subprocess.run(
        [str(venv / "bin" / "sqlmesh"), "plan", "--auto-apply", "--no-prompts"],
        cwd=work / "proj",
        env={**env, "CIRCUITLAKE_WAREHOUSE": str(work / "demo-warehouse")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert plan.returncode == 0, plan.stdout[-2000:] + plan.stderr[-2000:]
    (work / "proj" / "models" / "neuron_count.sql").write_text(
        "MODEL (name main.neuron_count, kind FULL);\nselect atlas, count(*) as neurons from main.neurons group by atlas\n"
    )
    built = cli("--warehouse", "demo-warehouse", "build", CIRCUITLAKE_PROJECT=str(work / "proj"))
    assert built.returncode == 0, built.stderr[-2000:]
    counted = cli("--warehouse", "demo-warehouse", "query", "select neurons from neuron_count where atlas = 'sample'")
    assert counted.returncode == 0 and "4096" in counted.stdout, counted.stdout + counted.stderr
