"""The command line as a user runs it: --help everywhere, exit codes, read-only query, busy warehouse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import tiny_graph, write_graph

from circuitlake import lake
from circuitlake.settings import warehouse

CLI = str(Path(sys.executable).parent / "circuitlake")


def run(*args, wh=None, **kw):
    env = {**os.environ, **({"CIRCUITLAKE_WAREHOUSE": str(wh)} if wh else {})}
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, **kw)


def test_ingest_exit_codes_query_and_busy_warehouse(tmp_path):
    wh = tmp_path / "wh"
    assert run("atlas", "add", "t", "--model", "m", "--layers", "4", "--neurons-per-layer", "16", wh=wh).returncode == 0
    assert run("atlas", "add", "Bad Name", "--model", "m", "--layers", "4", "--neurons-per-layer", "16", wh=wh).returncode == 2

    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir(), bad.mkdir()
    write_graph(good / "g.json", tiny_graph())
    write_graph(bad / "g2.json", tiny_graph(prompt="other"))
    (bad / "broken.json").write_text("{")
    assert run("ingest", "graphs", str(good), "--atlas", "t", wh=wh).returncode == 0
    assert run("ingest", "graphs", str(good), "--atlas", "t", wh=wh).returncode == 0  # nothing new, nothing wrong
    mixed = run("ingest", "graphs", str(bad), "--atlas", "t", wh=wh)
    assert mixed.returncode == 1 and "broken.json" in mixed.stderr and "1 landed" in mixed.stderr
    missing = run("ingest", "graphs", str(tmp_path / "nope"), "--atlas", "t", wh=wh)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert run("ingest", "graphs", str(good), "--atlas", "unknown", wh=wh).returncode == 2

    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"feature_id": 3, "labels": [{"label": "x"}]}\n{"feature_id": 999}\n')
    first = run("ingest", "labels", str(labels), "--atlas", "t", wh=wh)
    assert first.returncode == 1 and "line 2" in first.stderr
    again = run("ingest", "labels", str(labels), "--atlas", "t", wh=wh)
    assert again.returncode == 0 and "nothing to do" in again.stderr
    assert (
        run(
            "atlas",
            "add",
            "t",
            "--model",
            "m",
            "--layers",
            "4",
            "--neurons-per-layer",
            "16",
            "--label-precedence",
            "label=autointerp.label",
            wh=wh,
        ).returncode
        == 0
    )
    assert (
        run(
            "atlas", "add", "t", "--model", "m", "--layers", "4", "--neurons-per-layer", "16", "--label-precedence", "label=nonsense", wh=wh
        ).returncode
        == 2
    )

    assert run("build", wh=wh).returncode == 0
    labeled = run("query", "select count(*) || ':' || max(label) as r from neurons where atlas = 't' and label is not null", wh=wh)
    assert "1:x" in labeled.stdout
    q = run("query", "select count(*) as n from lake.graphs where atlas = 't'", wh=wh)
    assert q.returncode == 0 and "2" in q.stdout
    write = run("query", "create table x (a int)", wh=wh)
    assert write.returncode == 2 and "read-only" in write.stderr
    # no escape: one statement, no file outside the lake read or written, settings locked
    escape = tmp_path / "escape.csv"
    for sql, says in (
        (f"copy (select 42) to '{escape}'", "read-only"),
        ("select * from read_text('/etc/hostname')", "disabled"),
        ("select 1; select 2", "exactly one statement"),
        ("set enable_external_access = true", "read-only"),
        (f"select * from read_csv('{tmp_path / 'good' / 'g.json'}')", "disabled"),
    ):
        done = run("query", sql, wh=wh)
        assert done.returncode == 2 and says in done.stderr and len(done.stderr.strip().splitlines()) == 1, (sql, done.stderr)
    assert not escape.exists()

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(wh / 'circuitlake.duckdb')!r}); print('open', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        busy = run("build", wh=wh)
        assert busy.returncode == 2 and "close it first" in busy.stderr
        assert len(busy.stderr.strip().splitlines()) == 1
    finally:
        holder.kill()


def test_retract_dry_run_confirmation_and_yes(tmp_path):
    wh = tmp_path / "wh"
    assert run("atlas", "add", "t", "--model", "m", "--layers", "4", "--neurons-per-layer", "16", wh=wh).returncode == 0
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    write_graph(one, tiny_graph())
    write_graph(two, tiny_graph(prompt="other"))
    assert run("ingest", "graphs", str(one), str(two), "--atlas", "t", wh=wh).returncode == 0

    def graphs() -> str:
        return ",".join(lake.read(warehouse(wh), "graphs", ["source_path"])["source_path"].to_pylist())

    dry = run("retract", "--atlas", "t", "--files", str(one), "--dry-run", wh=wh)
    assert dry.returncode == 0 and "retract from t" in dry.stdout and "one.json" in graphs()
    refused = run("retract", "--atlas", "t", "--files", str(one), input="n\n", wh=wh)
    assert refused.returncode == 2 and "one.json" in graphs()
    assert run("retract", "--atlas", "t", "--source", "nothing-like-it", "--yes", wh=wh).returncode == 2
    done = run("retract", "--atlas", "t", "--files", str(one), "--yes", wh=wh)
    assert done.returncode == 0 and "circuitlake build" in done.stderr
    assert "one.json" not in graphs() and "two.json" in graphs()
