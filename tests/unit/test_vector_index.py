"""Semantic search's vector index (circuitlake/search.py, jobs/search_index.py): exact for small atlases,
IVF above search.EXACT_MAX vectors, cosine similarity either way, ids decoded back to (layer, neuron)."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from circuitlake import native, search
from circuitlake.jobs import search_index

DIMS = 32


def _clustered(n: int, seed: int) -> np.ndarray:
    """Label-embedding-like vectors: 50 topics plus noise (search quality depends on that structure)."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((50, DIMS))
    return (topics[rng.integers(0, 50, n)] + 0.6 * rng.standard_normal((n, DIMS))).astype(np.float32)


def _index(tmp_path, vectors: np.ndarray) -> tuple:
    con = duckdb.connect()
    layers, neurons = np.arange(len(vectors)) // 1000, np.arange(len(vectors)) % 1000
    embedding = pa.FixedSizeListArray.from_arrays(vectors.ravel(), DIMS)
    con.register("rows", pa.table({"layer": layers.astype(np.int32), "neuron": neurons.astype(np.int32), "embedding": embedding}))
    con.execute("create table vectors as select * from rows")
    path = tmp_path / "a.faiss"
    assert search_index.write_vector_index(con, "vectors", path, DIMS) == len(vectors)
    return path, layers, neurons


def _exact(vectors: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = unit @ (query / np.linalg.norm(query))
    return np.lexsort((np.arange(len(vectors)), -scores))[:k].tolist()


def test_a_small_atlas_gets_an_exact_index_with_cosine_scores(tmp_path):
    vectors = _clustered(3000, seed=1)
    path, layers, neurons = _index(tmp_path, vectors)
    query = vectors[17] * 3 + 0.1  # scale does not matter to cosine
    found = search.nearest(path, query.tolist(), 10)
    expected = _exact(vectors, query, 10)
    assert [(layer, neuron) for layer, neuron, _ in found] == [(int(layers[i]), int(neurons[i])) for i in expected]
    unit = vectors[expected[0]] / np.linalg.norm(vectors[expected[0]])
    assert found[0][2] == pytest.approx(float(unit @ (query / np.linalg.norm(query))), abs=1e-5)
    assert search.nearest(path, query.tolist(), 0) == []


def test_a_large_atlas_gets_an_ivf_index_with_high_recall(tmp_path, monkeypatch):
    monkeypatch.setattr(search, "EXACT_MAX", 2000)  # as for a 1.6M-neuron atlas, at a test's size
    vectors = _clustered(20_000, seed=2)
    assert search.cells(len(vectors)) == int(4 * np.sqrt(20_000))
    path, layers, neurons = _index(tmp_path, vectors)
    faiss = native.faiss()
    assert isinstance(faiss.read_index(str(path)), faiss.IndexIVFFlat)
    recalls = []
    for q in np.random.default_rng(3).choice(len(vectors), 20, replace=False):
        query = vectors[q] + 0.05 * np.random.default_rng(int(q)).standard_normal(DIMS).astype(np.float32)
        got = {(layer, neuron) for layer, neuron, _ in search.nearest(path, query.tolist(), 20)}
        recalls.append(len(got & {(int(layers[i]), int(neurons[i])) for i in _exact(vectors, query, 20)}) / 20)
    assert np.mean(recalls) >= 0.95, recalls


def test_clustering_runs_before_and_after_a_vector_index_in_one_process(tmp_path):
    """faiss and infomap share SWIG's type table: infomap loaded first, then faiss, made the next Infomap
    result iteration segfault. Through circuitlake.native faiss always loads first (a fresh process:
    the order is per process)."""
    script = f"""
import sys
import numpy as np, pyarrow as pa
from circuitlake import registry, search
from circuitlake.jobs.cluster import run_infomap
links = pa.table({{"src": list(range(300)), "tgt": [(i * 7 + 1) % 300 for i in range(300)], "weight": [1.0] * 300}})
first = run_infomap(links, registry.ClusterSettings())[1]
index = search.new_vector_index(8, 10)
index.add_with_ids(search.unit_rows(np.random.default_rng(0).random((10, 8))), np.arange(10))
search.save_vector_index(index, __import__("pathlib").Path({str(tmp_path / "v.faiss")!r}))
again = run_infomap(links, registry.ClusterSettings())[1]
print(len(first) == len(again) == 300, flush=True)
import os; os._exit(0)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "True", (done.returncode, done.stderr[-1000:])
