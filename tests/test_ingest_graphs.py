"""Graph ingest: formats, classification, idempotency, rejects, interrupted runs (real Delta tables)."""

from __future__ import annotations

import gzip
from contextlib import contextmanager

import pyarrow.compute as pc
import pytest
from conftest import tiny_graph, write_graph

from circuitlake import lake
from circuitlake.ingest import graphs as graph_ingest
from circuitlake.ingest.graphs import ingest_graphs
from circuitlake.lake import commit


def counts(wh, atlas="small"):
    return {
        t: lake.read(wh, t, filters=[("atlas", "=", atlas)]).num_rows
        for t in ("graphs", "graph_nodes", "graph_links", "rejects", "ingest_batches")
    }


@pytest.mark.parametrize("pool", [False, True], ids=["in-process", "worker-pool"])
def test_sample_corpus_lands_every_graph_node_and_link(wh, atlas, small_corpus, monkeypatch, pool, tmp_path):
    import json
    import shutil

    if pool:
        monkeypatch.setattr(graph_ingest, "IN_PROCESS_BYTES", 0)  # as for a corpus too large to land in-process
    landers, used = graph_ingest.landers, []

    @contextmanager
    def spy(*args):
        with landers(*args) as pool_:
            used.append(type(pool_).__name__)
            yield pool_

    monkeypatch.setattr(graph_ingest, "landers", spy)
    files = sorted(small_corpus.iterdir())
    assert any(f.suffix == ".gz" for f in files) and any(f.suffix == ".json" for f in files)
    corpus = tmp_path / "corpus"
    shutil.copytree(small_corpus, corpus)
    shutil.copy(files[0], corpus / f"copy_of_{files[0].name}")  # the same graph twice in one run: landed once
    bad = tiny_graph()
    bad["links"].append({"source": "3_7_1", "target": "0_5_0", "weight": 0.3})  # to an earlier layer
    for name in ("a_bad.json", "zz_bad.json"):  # one bad graph twice, first and last: two reject lines, one row
        write_graph(corpus / name, bad)
    report = ingest_graphs(wh, atlas, [str(corpus)], batch_graphs=5, show_progress=False)
    assert used == ["LanderPool" if pool else "InProcess"]
    assert (report.landed, report.skipped, report.rejected, report.exit_code) == (len(files), 1, 2, 1)
    assert [name for name in ("a_bad.json", "zz_bad.json") if any(name in line for line in report.rejects)] == ["a_bad.json", "zz_bad.json"]
    expected_nodes = expected_links = 0
    for f in files:
        g = json.loads(gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes())
        expected_nodes += len(g["nodes"])
        expected_links += len(g["links"])
    c = counts(wh)
    assert c["graphs"] == len(files) and c["graph_nodes"] == expected_nodes and c["graph_links"] == expected_links
    assert c["rejects"] == 1
    landed = lake.read(wh, "ingest_batches", filters=[("atlas", "=", "small")])["landed"].to_pylist()
    assert c["ingest_batches"] == report.batches and sum(landed) == len(files) and max(landed) <= 5
    # one lander fills batches in turn; each worker of the pool commits its own (the last one of each may be short)
    assert report.batches == -(-len(files) // 5) if not pool else report.batches <= -(-len(files) // 5) + 1


def test_nodes_are_classified_by_type_never_by_layer(wh, atlas, tmp_path):
    tmp_path = tmp_path / "in"
    tmp_path.mkdir()
    g = tiny_graph()
    # a kind no rule knows (attention features) is kept raw as `other`; transcoder kinds are judged by the atlas unit
    g["nodes"].append({"node_id": "lorsa_3_1", "feature": 3, "layer": "2", "ctx_idx": 1, "feature_type": "lorsa"})
    g["links"].append({"source": "lorsa_3_1", "target": "3_7_1", "weight": 0.1})
    write_graph(tmp_path / "g.json", g)
    assert ingest_graphs(wh, atlas, [str(tmp_path)], show_progress=False).landed == 1
    nodes = lake.read(wh, "graph_nodes").to_pylist()
    kinds = {n["node_id"] or f"{n['kind']}:{n['feature']}": (n["kind"], n["layer"]) for n in nodes}
    # the logit's layer "4" is not a model layer: it stays a logit without a layer
    assert kinds["logit:12"] == ("logit", None)
    assert kinds["embedding:9"] == ("embedding", None)
    assert kinds["neuron:5"] == ("neuron", 0) and kinds["neuron:7"] == ("neuron", 3)
    assert kinds["lorsa_3_1"] == ("other", 2)
    links = lake.read(wh, "graph_links").to_pylist()
    assert {(link["src_kind"], link["tgt_kind"]) for link in links} == {
        ("embedding", "neuron"),
        ("neuron", "neuron"),
        ("neuron", "logit"),
        ("other", "neuron"),
    }


def test_dangling_link_endpoint_is_kept_and_counted(wh, atlas, tmp_path):
    tmp_path = tmp_path / "in"
    tmp_path.mkdir()
    g = tiny_graph()
    g["links"].append({"source": "1_2_0", "target": "3_7_1", "weight": 0.2})  # 1_2_0 is not a node
    write_graph(tmp_path / "g.json", g)
    ingest_graphs(wh, atlas, [str(tmp_path)], show_progress=False)
    assert lake.read(wh, "graphs")["dangling_links"].to_pylist() == [1]
    assert lake.read(wh, "graph_links").num_rows == 4


def test_reingest_same_renamed_or_recompressed_files_adds_nothing(wh, atlas, small_corpus, tmp_path):
    ingest_graphs(wh, atlas, [str(small_corpus)], show_progress=False)
    before = counts(wh)
    copies = tmp_path / "copies"
    copies.mkdir()
    for i, f in enumerate(sorted(small_corpus.iterdir())):
        data = gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
        # renamed, and gzip flipped: a .json becomes .json.gz and vice versa
        if f.suffix == ".gz":
            (copies / f"renamed_{i}.json").write_bytes(data)
        else:
            (copies / f"renamed_{i}.json.gz").write_bytes(gzip.compress(data))
    again = ingest_graphs(wh, atlas, [str(small_corpus), str(copies)], show_progress=False)
    assert again.landed == 0 and again.skipped == 2 * before["graphs"]
    assert counts(wh) == before


def test_bad_files_are_rejected_with_file_and_record_while_good_ones_land(wh, atlas, tmp_path):
    tmp_path = tmp_path / "in"
    tmp_path.mkdir()
    write_graph(tmp_path / "good.json", tiny_graph())
    bad_weight = tiny_graph(prompt="bad weight")
    del bad_weight["links"][1]["weight"]
    write_graph(tmp_path / "missing_weight.json", bad_weight)
    outside = tiny_graph(prompt="outside")
    outside["nodes"][2].update(feature=99_999, node_id="3_99999_1")
    write_graph(tmp_path / "outside_shape.json", outside)
    backwards = tiny_graph(prompt="backwards")
    backwards["links"].append({"source": "3_7_1", "target": "0_5_0", "weight": 0.3})
    write_graph(tmp_path / "backwards.json", backwards)
    (tmp_path / "truncated.json").write_text('{"nodes": [')
    (tmp_path / "corrupt.json.gz").write_bytes(b"\x1f\x8bnot really gzip")

    report = ingest_graphs(wh, atlas, [str(tmp_path)], show_progress=False)
    assert report.landed == 1 and report.rejected == 5 and report.exit_code == 1
    rejects = {r["file"].rsplit("/", 1)[1]: r for r in lake.read(wh, "rejects").to_pylist()}
    assert set(rejects) == {"missing_weight.json", "outside_shape.json", "backwards.json", "truncated.json", "corrupt.json.gz"}
    assert rejects["missing_weight.json"]["record"] == "links.1.weight"
    assert "outside the atlas shape" in rejects["outside_shape.json"]["reason"]
    assert rejects["backwards.json"]["record"] == "links[3]"
    assert any("missing_weight.json [links.1.weight]" in line for line in report.rejects)

    rerun = ingest_graphs(wh, atlas, [str(tmp_path)], show_progress=False)
    assert rerun.landed == 0 and rerun.rejected == 5  # still reported...
    assert lake.read(wh, "rejects").num_rows == 5  # ...but not recorded twice
    assert counts(wh)["graphs"] == 1


def test_interrupted_run_leaves_lake_consistent_and_rerun_completes(wh, atlas, small_corpus, monkeypatch):
    real_append = commit.append  # the commit protocol's writes
    calls = {"graphs": 0}

    def crash_on_second_graphs_commit(w, name, data):
        if name == "graphs":
            calls["graphs"] += 1
            if calls["graphs"] == 2:
                raise KeyboardInterrupt("power cut")
        real_append(w, name, data)

    monkeypatch.setattr(commit, "append", crash_on_second_graphs_commit)
    with pytest.raises(KeyboardInterrupt):
        ingest_graphs(wh, atlas, [str(small_corpus)], batch_graphs=5, workers=1, show_progress=False)
    # batch 2 wrote links and nodes but never committed: readers must not count it
    committed = lake.committed_batches(wh, atlas)
    assert len(committed) == 1
    raw_batches = set(pc.unique(lake.read(wh, "graph_links")["batch"]).to_pylist())
    assert len(raw_batches - committed) == 1

    monkeypatch.setattr(commit, "append", real_append)
    report = ingest_graphs(wh, atlas, [str(small_corpus)], batch_graphs=5, show_progress=False)
    assert report.skipped == 5 and report.landed == 24 - 5
    committed = lake.committed_batches(wh, atlas)
    for table in ("graphs", "graph_nodes", "graph_links"):
        assert set(pc.unique(lake.read(wh, table)["batch"]).to_pylist()) == committed
    graph_ids = lake.read(wh, "graphs")["graph_id"].to_pylist()
    assert len(graph_ids) == len(set(graph_ids)) == 24


def test_graph_key_is_the_first_eight_bytes_of_the_hash():
    assert graph_ingest.graph_key("00" * 7 + "01" + "ff" * 24) == 1
    assert graph_ingest.graph_key("ff" * 32) == -1


def test_unknown_atlas_and_missing_path_are_user_errors(wh, atlas, tmp_path):
    from circuitlake.errors import UserError

    with pytest.raises(UserError, match="not registered"):
        ingest_graphs(wh, "nope", [str(tmp_path)], show_progress=False)
    with pytest.raises(UserError, match="no such file"):
        ingest_graphs(wh, atlas, [str(tmp_path / "missing")], show_progress=False)


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "worker-pool"])
def test_killed_ingest_process_leaves_lake_consistent(wh, atlas, small_corpus, workers):
    """A real interruption: SIGKILL the ingest process (only it) once a first batch committed, then re-run.
    Its workers, which commit batches of their own, end with it: none commits after the run is gone."""
    import subprocess
    import sys
    import time

    import psutil

    code = (
        "from circuitlake.settings import warehouse; from circuitlake.ingest import graphs\n"
        "graphs.IN_PROCESS_BYTES = 0  # workers even for this small corpus\n"
        f"graphs.ingest_graphs(warehouse({str(wh.root)!r}), {atlas!r}, [{str(small_corpus)!r}], batch_graphs=1, workers={workers}, "
        "show_progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    while not lake.committed_batches(wh, atlas) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    helpers = psutil.Process(proc.pid).children(recursive=True)  # the fork server and the workers
    proc.kill()
    proc.wait()
    _, alive = psutil.wait_procs(helpers, timeout=2)
    running = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]  # a zombie has ended (nobody reaped it yet)
    assert not running, f"{len(running)} worker processes outlived the killed ingest"
    assert len(helpers) >= (0 if workers == 1 else workers + 1)  # the fork server and a worker per core
    committed = lake.committed_batches(wh, atlas)
    assert 1 <= len(committed) < 24, "killed after the first commit, before the last"
    graphs = lake.read(wh, "graphs")
    landed = [g for g, b in zip(graphs["graph_id"].to_pylist(), graphs["batch"].to_pylist(), strict=False) if b in committed]
    assert len(landed) == len(committed)  # one graph per committed batch, whatever else was half-written

    report = ingest_graphs(wh, atlas, [str(small_corpus)], show_progress=False)
    assert report.skipped == len(committed) and report.landed == 24 - len(committed)
    committed = lake.committed_batches(wh, atlas)
    for table in ("graphs", "graph_nodes", "graph_links"):
        assert set(pc.unique(lake.read(wh, table)["batch"]).to_pylist()) <= committed
    assert len(set(lake.read(wh, "graphs")["graph_id"].to_pylist())) == lake.read(wh, "graphs").num_rows == 24


def test_a_second_writer_fails_fast_naming_the_holder_and_a_killed_holder_leaves_no_lock(wh, atlas, small_corpus):
    import subprocess
    import sys

    from circuitlake.locks import AtlasBusy, atlas_lock

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from circuitlake.locks import atlas_lock; from circuitlake.settings import warehouse\n"
                f"with atlas_lock(warehouse({str(wh.root)!r}), {atlas!r}, 'ingest graphs'):\n"
                "    print('held', flush=True); time.sleep(60)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(AtlasBusy, match=rf"being written by `ingest graphs` \(pid {holder.pid} "):
            ingest_graphs(wh, atlas, [str(small_corpus)], show_progress=False)
        assert counts(wh)["graphs"] == 0
    finally:
        holder.kill()  # SIGKILL: no cleanup runs
        holder.wait()
    with atlas_lock(wh, atlas, "test"):  # the OS dropped the dead holder's lock
        pass
    assert ingest_graphs(wh, atlas, [str(small_corpus)], show_progress=False).landed == len(list(small_corpus.iterdir()))


def test_concurrent_ingests_of_the_same_files_land_every_graph_once(wh, atlas, small_corpus):
    import subprocess
    import sys

    code = (
        "from circuitlake.settings import warehouse; from circuitlake.errors import UserError\n"
        "from circuitlake.ingest.graphs import ingest_graphs\n"
        "try:\n"
        f"    print(ingest_graphs(warehouse({str(wh.root)!r}), {atlas!r}, [{str(small_corpus)!r}],\n"
        "                        batch_graphs=3, show_progress=False).landed)\n"
        "except UserError as e:\n    print('busy', e)"
    )
    runs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [r.communicate(timeout=300)[0] for r in runs]
    graphs = lake.read(wh, "graphs", ["graph_id"])["graph_id"].to_pylist()
    assert len(graphs) == len(set(graphs)) == len(list(small_corpus.iterdir())), outputs
