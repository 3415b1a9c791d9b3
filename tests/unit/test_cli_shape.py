"""The command line's shape: every registered command has --help, the CLI starts without the heavy
libraries, and commands that read a warehouse never create one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from circuitlake.app.cli import app
from circuitlake.formats import label_files

CLI = str(Path(sys.executable).parent / "circuitlake")
HEAVY = ("duckdb", "sqlmesh", "pyarrow", "deltalake", "openai", "torch", "infomap", "matplotlib")


def _commands(group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path the app registers, groups included, walked from the app itself."""
    found = [path]
    for name, sub in sorted(getattr(group, "commands", {}).items()):
        found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_the_walk_finds_every_command():
    assert len(COMMANDS) >= 25 and ("ingest", "labels") in COMMANDS and ("label",) in COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "circuitlake")
def test_every_command_has_help(command):
    done = CliRunner().invoke(app, [*command, "--help"])
    assert done.exit_code == 0 and "Usage" in done.output, done.output
    assert len(done.output.strip().splitlines()) > 3


def test_format_help_lists_every_label_format():
    done = CliRunner().invoke(app, ["ingest", "labels", "--help"], terminal_width=400)
    assert all(name in done.output for name in label_files.names())


def test_the_cli_starts_without_the_heavy_libraries():
    probe = f"import sys, circuitlake.app.cli; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


READS = [
    ["atlas", "list"],
    ["status"],
    ["query", "select 1"],
    ["search", "aspirin"],
    ["neuron", "L1/N2"],
    ["audit"],
    ["build"],
    ["cluster"],
    ["maintain"],
    ["retract", "--all", "--yes"],
    ["ingest", "graphs", "/nonexistent"],
    ["export", "out.duckdb"],
]


@pytest.mark.parametrize("command", READS, ids=" ".join)
def test_a_missing_warehouse_is_one_line_and_nothing_is_created(tmp_path, command):
    typo = tmp_path / "typo"
    done = subprocess.run([CLI, "--warehouse", str(typo), *command], capture_output=True, text=True, cwd=tmp_path, env=os.environ)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: no warehouse at {typo}: pass --warehouse, or register an atlas there first (circuitlake atlas add)"
    ]
    assert list(tmp_path.iterdir()) == []  # no warehouse, no output file
