"""Huge graphs streamed (nodes, then links in chunks): the same rows and rejects as the in-memory path,
and a graph rejected in a late chunk leaves nothing of it in the lake."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import tiny_graph, write_graph

from circuitlake import lake, registry
from circuitlake.app.sample_transcoder import TranscoderSpec, make_graph, planted_features
from circuitlake.ingest import sources
from circuitlake.ingest.graph_rows import GraphError, Shape, read_graph, to_rows
from circuitlake.ingest.graph_stream import stream_rows
from circuitlake.ingest.graphs import ingest_graphs

DATA = ("graphs", "graph_nodes", "graph_links")


def streamed(path: Path, shape: Shape, chunk: int) -> tuple:
    links, out = [], {}
    for table, rows in stream_rows(path, shape, chunk_links=chunk):
        if table == "graph_links":
            links.append(rows)
        else:
            out[table] = rows
    return out["graph"], out["graph_nodes"].to_pylist(), pa.concat_tables(links).to_pylist() if links else []


def in_memory(path: Path, shape: Shape) -> tuple:
    rows = to_rows(read_graph(sources.read_bytes(path)), *shape)
    return rows.graph, rows.nodes.to_pylist(), rows.links.to_pylist()


def test_streamed_rows_equal_in_memory_rows_whatever_the_chunk(small_corpus, tmp_path):
    spec = TranscoderSpec(graphs=3)
    clt = [write_graph(tmp_path / f"clt{i}.json", make_graph(spec, i, planted_features(spec))[1]) for i in range(3)]
    cases = [(f, Shape(8, 512)) for f in sorted(small_corpus.iterdir())[:8]] + [(f, Shape(6, 2048, "transcoder")) for f in clt]
    for path, shape in cases:
        expected = in_memory(path, shape)
        for chunk in (7, 1_000_000):
            assert streamed(path, shape, chunk) == expected, (path.name, chunk)


@pytest.mark.parametrize(
    "change, record",
    [
        (lambda g: g["links"][-1].update(weight="x"), "links.{last}.weight"),  # pydantic's record, numbered from the file's start
        (lambda g: g["links"].append({"source": "3_7_1", "target": "0_5_0", "weight": 0.5}), "links[{last}]"),  # backward
        (lambda g: g["nodes"][1].update(ctx_idx=-1), "nodes.1.ctx_idx"),
    ],
)
def test_streamed_rejects_name_the_same_record(tmp_path, change, record):
    g = tiny_graph()
    g["links"] += [{"source": "E_9_0", "target": "0_5_0", "weight": 0.1 * i} for i in range(1, 20)]
    change(g)
    path = write_graph(tmp_path / "g.json", g)
    with pytest.raises(GraphError) as e:
        streamed(path, Shape(8, 512), 4)
    assert e.value.record == record.format(last=len(g["links"]) - 1)


def test_a_huge_graph_lands_in_its_own_batch_and_a_rejected_one_leaves_nothing(wh, atlas, tmp_path):
    good = tiny_graph(prompt="good")
    good["links"] += [{"source": "E_9_0", "target": "0_5_0", "weight": 0.1 * i} for i in range(1, 3000)]
    bad = json.loads(json.dumps(good))
    bad["metadata"]["prompt"] = "bad"
    bad["links"].append({"source": "3_7_1", "target": "0_5_0", "weight": 0.5})  # backward, in the last chunk
    folder = tmp_path / "in"
    folder.mkdir()
    write_graph(folder / "good.json", good)
    (folder / "bad.json.gz").write_bytes(gzip.compress(json.dumps(bad).encode()))
    write_graph(folder / "small.json", tiny_graph(prompt="small"))
    size = sources.content_size(folder / "good.json")
    report = ingest_graphs(wh, atlas, [str(folder)], stream_bytes=size - 1, show_progress=False)
    assert (report.landed, report.rejected, report.batches) == (2, 1, 3)  # the small one by the pool, the huge one alone
    graphs = lake.read(wh, "graphs").to_pylist()
    assert sorted(g["prompt"] for g in graphs) == ["good", "small"]
    links = lake.read(wh, "graph_links")
    assert links.num_rows == len(good["links"]) + len(tiny_graph()["links"])
    batches = {p["batch"] for p in __import__("deltalake").DeltaTable(str(wh.table("graph_links"))).partitions()}
    assert batches <= lake.committed_batches(wh, atlas)  # the rejected graph's chunks were deleted, not left behind
    reject = lake.read(wh, "rejects").to_pylist()[0]
    assert reject["file"].endswith("bad.json.gz") and reject["record"] == f"links[{len(bad['links']) - 1}]"
    again = ingest_graphs(wh, atlas, [str(folder)], stream_bytes=size - 1, show_progress=False)
    assert (again.landed, again.skipped, lake.read(wh, "rejects").num_rows) == (0, 2, 1)  # a re-run adds nothing


def test_a_streamed_graph_lands_the_same_rows_as_a_parsed_one(wh, atlas, tmp_path, small_corpus):
    registry.add(wh, registry.AtlasRecord(atlas="streamed", model_id="m", num_layers=8, neurons_per_layer=512))
    files = [str(f) for f in sorted(small_corpus.iterdir())[:6]]
    ingest_graphs(wh, atlas, files, show_progress=False)
    ingest_graphs(wh, "streamed", files, stream_bytes=0, show_progress=False)
    for table in DATA:
        rows = lake.read(wh, table).drop_columns(["batch"])
        key = [c for c in rows.column_names if c not in ("atlas", "prompt_tokens")]
        parsed = (
            rows.filter(pa.compute.equal(rows["atlas"], atlas))
            .drop_columns(["atlas"])
            .sort_by([(c, "ascending") for c in key if c != "atlas"])
        )
        stream = (
            rows.filter(pa.compute.equal(rows["atlas"], "streamed"))
            .drop_columns(["atlas"])
            .sort_by([(c, "ascending") for c in key if c != "atlas"])
        )
        assert stream.num_rows and stream.equals(parsed), table
