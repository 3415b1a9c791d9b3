"""Stress: rounds of concurrent writing commands, each killed with SIGKILL (the whole process group) at a
random point, then run again; after every round the warehouse is built and compared with a clean one
built from the same inputs. `migrate` is killed the same way on a copy of a schema-1 lake.

A round picks two of: ingest graphs (the next part of the corpus), ingest labels (the other version of
one source), retract (a landed file), build, maintain; runs them at once; kills one of them after a
random delay; reruns every command that was killed or found its atlas or warehouse busy, until it
ends. `python bench/run.py stress` (`make test-stress`) runs STRESS_ROUNDS rounds (default 12) and
reports rounds, kills and losses; the suite runs a short version (tests/test_stress.py).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from bench.measure import table

HERE = Path(__file__).resolve().parent
CLI = str(Path(sys.executable).parent / "circuitlake")
ATLAS = "s"
PARTS, PER_PART = 8, 6
EDGES = "select src_layer, src_neuron, tgt_layer, tgt_neuron, count, round(weight_sum, 6), method from edges order by all"
NEURONS = "select layer, neuron, label, appearance_count from neurons order by all"


@dataclass
class Tally:
    rounds: int = 0
    commands: int = 0
    kills: int = 0
    reruns: int = 0
    busy: int = 0  # a command that met another writer (exit 2) and ran again
    losses: list[str] = field(default_factory=list)  # rounds whose warehouse differed from the clean one


def cli(wh: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "--warehouse", str(wh), *args], capture_output=True, text=True, **kw)


def start(wh: Path, args: list[str]) -> subprocess.Popen:
    """A command in its own process group (its parsers and Infomap threads die with it)."""
    return subprocess.Popen(
        [CLI, "--warehouse", str(wh), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def corpus(work: Path) -> tuple[list[Path], list[Path]]:
    """Graph parts (folders) and two versions of one label file."""
    from circuitlake.app.sample import SampleSpec, write_graphs

    parts = []
    for p in range(PARTS):
        folder = work / "corpus" / f"part{p}"
        if not folder.exists():
            write_graphs(SampleSpec(graphs=PER_PART, min_nodes=80, max_nodes=140, seed=100 + p), folder)
        parts.append(folder / "graphs")
    labels = []
    for v in (1, 2):
        path = work / "corpus" / f"labels_v{v}" / "lab.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({f"L{n % 8}/N{n}": {"label": f"v{v} label {n}", "short_label": f"v{v} {n}"} for n in range(0, 512, 3)}))
        labels.append(path)
    return parts, labels


def register(wh: Path) -> None:
    done = cli(wh, "atlas", "add", ATLAS, "--model", "m", "--layers", "8", "--neurons-per-layer", "512", "--cluster-min-count", "2")
    assert done.returncode == 0, done.stderr


def snapshot(wh: Path) -> dict[str, list]:
    db = duckdb.connect(str(wh / "circuitlake.duckdb"), read_only=True)
    try:
        return {"edges": db.execute(EDGES).fetchall(), "neurons": db.execute(NEURONS).fetchall()}
    finally:
        db.close()


def clean(work: Path, files: list[Path], labels: Path | None) -> dict[str, list]:
    """A fresh warehouse from the inputs the stressed one should hold, built without kills."""
    wh = work / "clean"
    shutil.rmtree(wh, ignore_errors=True)
    register(wh)
    if files:
        assert cli(wh, "ingest", "graphs", *map(str, files), "--atlas", ATLAS).returncode == 0
    if labels:
        assert cli(wh, "ingest", "labels", str(labels), "--atlas", ATLAS, "--source", "lab").returncode in (0, 1)
    assert cli(wh, "build").returncode == 0
    return snapshot(wh)


def finish(wh: Path, args: list[str], tally: Tally) -> None:
    """Run a command again until it ends (a killed run leaves what it did consistent; busy: retry)."""
    for _ in range(20):
        tally.reruns += 1
        done = cli(wh, *args)
        if done.returncode in (0, 1) or (args[0] == "retract" and "nothing to retract" in done.stderr):
            return  # (a killed retract may have finished its work: nothing is left to take out)
        if "being built" in done.stderr or "being written" in done.stderr or "close it first" in done.stderr:
            tally.busy += 1
            time.sleep(0.5)
            continue
        raise AssertionError(f"{args}: exit {done.returncode}: {done.stderr[-800:]}")
    raise AssertionError(f"{args}: still busy after 20 tries")


def migrate_round(work: Path, rng: random.Random, tally: Tally) -> None:
    """Kill `migrate` at a random point of a schema-1 lake's migration, run it again: every row kept."""
    from circuitlake import lake
    from circuitlake.settings import warehouse

    wh = warehouse(work / "migrate")
    shutil.rmtree(wh.root, ignore_errors=True)
    shutil.copytree(HERE.parent / "tests" / "fixtures" / "lake_v1", wh.lake)
    before = {t: lake.read(wh, t).num_rows for t in ("graphs", "graph_nodes", "graph_links", "labels", "rejects")}
    proc = start(wh.root, ["migrate"])
    time.sleep(rng.uniform(0.3, 4.0))
    tally.kills += proc.poll() is None
    kill(proc)
    finish(wh.root, ["migrate"], tally)
    after = {t: lake.read(wh, t).num_rows for t in before}
    if lake.lake_version(wh) != lake.SCHEMA_VERSION or after != before:
        tally.losses.append(f"migrate: {before} -> {after}")


def stress(work: Path, rounds: int, seed: int = 0) -> Tally:
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    parts, label_versions = corpus(work)
    wh = work / "stressed"
    shutil.rmtree(wh, ignore_errors=True)
    register(wh)
    tally = Tally()
    next_part, landed, retracted, labels = 0, [], set(), None
    for r in range(rounds):
        earlier = [f for f in landed if f not in retracted]  # landed in earlier rounds: retractable now
        choices = ["build", "maintain", "labels"] + (["ingest graphs"] if next_part < PARTS else []) + (["retract"] if earlier else [])
        picked = rng.sample(choices, 2)
        commands = []
        for kind in picked:
            if kind == "ingest graphs":
                commands.append(["ingest", "graphs", str(parts[next_part]), "--atlas", ATLAS])
                landed += sorted(parts[next_part].iterdir())
                next_part += 1
            elif kind == "retract":
                gone = rng.choice(earlier)
                retracted.add(gone)
                commands.append(["retract", "--atlas", ATLAS, "--files", str(gone), "--yes"])
            elif kind == "labels":
                labels = label_versions[r % 2]
                commands.append(["ingest", "labels", str(labels), "--atlas", ATLAS, "--source", "lab"])
            else:
                commands.append([kind] + (["--retain-hours", "0"] if kind == "maintain" else []))
        procs = [start(wh, c) for c in commands]
        victim = rng.randrange(len(procs))
        time.sleep(rng.uniform(0.2, 6.0))
        tally.kills += procs[victim].poll() is None
        kill(procs[victim])
        for i, proc in enumerate(procs):
            if i != victim:
                proc.wait()
            tally.commands += 1
            if i == victim or proc.returncode not in (0, 1):
                finish(wh, commands[i], tally)
        if r % 4 == 3 or r == rounds - 1:
            migrate_round(work, rng, tally)
        finish(wh, ["build"], tally)
        kept = [f for f in landed if f not in retracted]
        if snapshot(wh) != clean(work, kept, labels):
            tally.losses.append(f"round {r}: {commands}")
        tally.rounds += 1
    return tally


def builds_in_a_row(work: Path, n: int) -> tuple[int, float]:
    """`n` builds in one process (SQLMesh's loader once died at random in a forked worker): (failures, seconds each)."""
    from circuitlake.app.build import build
    from circuitlake.settings import warehouse

    wh = warehouse(work / "stressed")
    failures, started = 0, time.monotonic()
    for _ in range(n):
        try:
            build(wh, cluster=False)
        except Exception:  # noqa: BLE001 (counted: the figure is how many)
            failures += 1
    return failures, (time.monotonic() - started) / n


def run(work: Path) -> str:
    rounds = int(os.environ.get("STRESS_ROUNDS", "12"))
    started = time.monotonic()
    t = stress(work, rounds)
    minutes = (time.monotonic() - started) / 60
    failed, each = builds_in_a_row(work, 30)
    return (
        "## Stress: concurrent writers killed at random\n\n"
        f"{t.rounds} rounds ({minutes:.1f} min): each ran two writing commands at once (ingest graphs, ingest labels, "
        "retract, build, maintain), killed one of them with SIGKILL (its whole process group) after a random delay of "
        "0.2-6 s, ran again whatever was killed or met a busy atlas/warehouse, then built and compared `edges` and "
        "`neurons` with a clean warehouse built from the same inputs; every fourth round and the last also killed `migrate` of a "
        "schema-1 lake at a random point and ran it again (every row kept). A loss is a round whose warehouse differed.\n\n"
        + table(
            ["rounds", "commands", "kills (while running)", "reruns", "busy retries", "losses"],
            [[t.rounds, t.commands, t.kills, t.reruns, t.busy, len(t.losses)]],
        )
        + ("\n\nLosses: " + "; ".join(t.losses) if t.losses else "")
        + f"\n\nThen 30 builds in a row in one process on the stressed warehouse: {failed} failed ({each:.1f} s each; "
        "SQLMesh loads the project without forking).\n"
    )
