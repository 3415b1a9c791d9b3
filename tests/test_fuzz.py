"""Fuzzed input: a few hundred mutated graph files, and mutated files of each label format, go through the
ingest CLI. No crash, no traceback; every file either lands or has its reject rows; the files that cannot
be read are among the rejected; the good files land; another atlas's rows do not change."""

from __future__ import annotations

import copy
import gzip
import json
import random

import pyarrow.compute as pc
from conftest import cli, tiny_graph

from circuitlake import lake
from circuitlake.app.sample import SampleSpec, write_labels
from circuitlake.errors import UserError
from circuitlake.ingest.labels import ingest_labels
from circuitlake.settings import warehouse

WRONG = ["x", None, [], {}, -1, 1e308, 2**70, True, "1e999", float("nan")]


def _mutate(rng: random.Random, i: int) -> tuple[str, bytes, bool]:
    """(kind, file bytes, certainly unreadable). Every file is unique (its prompt carries i)."""
    g = tiny_graph(prompt=f"fuzz {i}")
    kind = rng.choice(
        [
            "good",
            "truncated",
            "wrong type",
            "huge number",
            "duplicate node id",
            "deep nesting",
            "random bytes",
            "utf-16",
            "latin-1",
            "bad gzip",
            "missing key",
            "dangling link",
        ]
    )
    if kind == "good":
        return kind, json.dumps(g).encode(), False
    if kind == "truncated":
        text = json.dumps(g).encode()
        return kind, text[: rng.randrange(1, len(text) - 1)], True
    if kind == "wrong type":
        where = rng.choice([g["metadata"], *g["nodes"], *g["links"]])
        where[rng.choice(sorted(where))] = rng.choice(WRONG)
    elif kind == "huge number":
        rng.choice(g["links"])["weight"] = rng.choice([1e308 * 10, -1e308 * 10, 2**80])
    elif kind == "duplicate node id":
        twin = copy.deepcopy(rng.choice(g["nodes"]))
        twin["feature"] = 11
        g["nodes"].append(twin)
    elif kind == "deep nesting":  # written as text: json.dumps itself recurses
        depth = rng.choice([50, 5000])
        text = json.dumps(g).replace('"metadata": {', '"metadata": {"extra": ' + "[" * depth + "]" * depth + ", ", 1)
        return kind, text.encode(), False
    elif kind == "random bytes":
        return kind, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))) + b"\xff", True
    elif kind == "utf-16":
        return kind, json.dumps(g, ensure_ascii=False).encode("utf-16"), True
    elif kind == "latin-1":
        g["metadata"]["prompt"] = f"caf\u00e9 {i}"
        return kind, json.dumps(g, ensure_ascii=False).encode("latin-1"), True
    elif kind == "bad gzip":
        return kind, gzip.compress(json.dumps(g).encode())[:-12], True
    elif kind == "missing key":  # (not the metadata: its prompt keeps the file unique)
        del g[rng.choice(["nodes", "links"])]
    elif kind == "dangling link":
        g["links"].append({"source": "nowhere", "target": "0_5_0", "weight": 0.1})
    return kind, json.dumps(g, allow_nan=True).encode(), False


def _lake_rows(wh, atlas: str) -> dict:
    return {t: lake.read(wh, t, filters=[("atlas", "=", atlas)]).sort_by("batch") for t in ("graphs", "graph_links", "labels", "rejects")}


def test_fuzzed_graph_and_label_files_never_crash_and_land_or_reject(tmp_path):
    wh = warehouse(tmp_path / "wh")
    for name in ("fuzz", "bystander"):
        assert cli("atlas", "add", name, "--model", "m", "--layers", "8", "--neurons-per-layer", "16", wh=wh.root).returncode == 0
    bystander = tmp_path / "bystander.json"
    bystander.write_text(json.dumps(tiny_graph(prompt="bystander")))
    assert cli("ingest", "graphs", str(bystander), "--atlas", "bystander", wh=wh.root).returncode == 0
    before = _lake_rows(wh, "bystander")

    rng = random.Random(7)
    folder = tmp_path / "fuzz"
    folder.mkdir()
    kinds: dict[str, tuple[str, bool]] = {}
    for i in range(300):
        kind, data, unreadable = _mutate(rng, i)
        path = folder / (f"g{i:03d}.json.gz" if kind == "bad gzip" else f"g{i:03d}.json")
        path.write_bytes(data)
        kinds[str(path)] = (kind, unreadable)
    done = cli("ingest", "graphs", str(folder), "--atlas", "fuzz", "--batch-graphs", "32", wh=wh.root)
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout

    landed = set(lake.read(wh, "graphs", ["source_path"], [("atlas", "=", "fuzz")])["source_path"].to_pylist())
    rejected = set(lake.read(wh, "rejects", ["file"], [("atlas", "=", "fuzz")])["file"].to_pylist())
    missing = {p: kinds[p][0] for p in set(kinds) - landed - rejected}
    assert not missing and not landed & rejected, missing
    assert {p for p, (_, unreadable) in kinds.items() if unreadable} <= rejected
    assert {p for p, (kind, _) in kinds.items() if kind == "good"} <= landed
    assert {kind for p, (kind, _) in kinds.items() if p in rejected} >= {"truncated", "random bytes", "wrong type", "missing key"}
    reasons = lake.read(wh, "rejects", ["reason"], [("atlas", "=", "fuzz")])["reason"]
    assert pc.all(pc.less(pc.utf8_length(reasons), 400)).as_py()  # one line each, not a dump
    # a second run changes nothing
    again = cli("ingest", "graphs", str(folder), "--atlas", "fuzz", wh=wh.root)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert lake.read(wh, "rejects", ["file"], [("atlas", "=", "fuzz")]).num_rows == len(reasons)

    # each label format, mutated line by line or cut short
    originals = write_labels(SampleSpec(graphs=1, layers=8, neurons_per_layer=16, seed=3), tmp_path / "labels")
    for original in originals:
        text = original.read_bytes()
        for n, data in enumerate(
            [
                text[: len(text) // 2],
                bytes(rng.randrange(256) for _ in range(300)),
                text.replace(b'"', b"'", 3),
                text.decode().encode("utf-16"),
            ]
        ):
            path = tmp_path / "labels" / f"{original.stem}-{n}{''.join(original.suffixes)}"
            path.write_bytes(data)
            try:  # in-process (the CLI turns a UserError into one line and exit 2): nothing else may escape
                ingest_labels(wh, "fuzz", path, source=f"{original.stem}-{n}", show_progress=False)
            except UserError as e:
                assert len(str(e).splitlines()) == 1, (path, e)

    after = _lake_rows(wh, "bystander")
    for table, rows in before.items():
        assert after[table].equals(rows), table
