"""Schema migration: a lake written by schema version 1 (tests/fixtures/lake_v1, made by the circuitlake of
that version) is refused by every command until `circuitlake migrate`, which keeps every row."""

from __future__ import annotations

import shutil
from pathlib import Path

from circuitlake import lake
from circuitlake.settings import warehouse
from test_cli import run

FIXTURE = Path(__file__).parent / "fixtures" / "lake_v1"


def test_v1_lake_is_refused_until_migrated_and_keeps_every_row(tmp_path):
    wh = warehouse(tmp_path / "wh")
    shutil.copytree(FIXTURE, wh.lake)
    assert lake.lake_version(wh) == "1"
    rows = {name: lake.read(wh, name) for name in lake.TABLES if lake.schema_version(wh, name)}
    assert rows["graphs"].num_rows == 2 and rows["labels"].num_rows == 1 and rows["rejects"].num_rows == 2

    for command in (["status"], ["build"], ["ingest", "graphs", str(tmp_path), "--atlas", "t"], ["atlas", "list"],
                    ["retract", "--atlas", "t", "--all", "--yes"], ["maintain"]):
        refused = run(*command, wh=wh.root)
        assert refused.returncode == 2 and "circuitlake migrate" in refused.stderr, command
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert lake.lake_version(wh) == "1" and not lake.schema_version(wh, "retractions")  # nothing created

    done = run("migrate", wh=wh.root)
    assert done.returncode == 0 and "1 -> 2" in done.stderr
    assert lake.lake_version(wh) == lake.SCHEMA_VERSION == "2"
    for name, before in rows.items():
        assert lake.read(wh, name).equals(before), name
    assert lake.read(wh, "retractions").num_rows == 0
    assert "nothing to do" in run("migrate", wh=wh.root).stderr

    # the migrated lake works: built, then a retraction of its graphs
    assert run("build", wh=wh.root).returncode == 0
    assert run("retract", "--atlas", "t", "--all", "--yes", wh=wh.root).returncode == 0
    assert run("build", wh=wh.root).returncode == 0
