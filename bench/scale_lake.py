"""A Qwen-shaped lake written straight into the Delta tables, for the scale tiers of `bench/scale.py`.

64 layers x 25,600 neurons; 256-graph batches; per graph ~300 neuron nodes drawn with Zipf-like
popularity (u^5 over a per-layer permutation, so a few neurons appear in most graphs) and ~2,900
neuron->neuron links between them, popular nodes preferred (source layer < target layer) plus a few embedding/logit links.
Several batches share one Delta commit per table; their `ingest_batches` markers are committed last,
as the ingest jobs do, so the lake is consistent at every moment.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from circuitlake import lake, registry
from circuitlake.lake import new_batch_id, now
from circuitlake.settings import Warehouse

LAYERS, NPL = 64, 25_600
GRAPHS_PER_BATCH, NODES, LINKS = 256, 300, 2_900
ATLAS = "qwen-bench"


def register(wh: Warehouse) -> None:
    lake.ensure(wh)
    # one Infomap trial: the bench measures a trial at each tier (the research default is 20)
    settings = registry.AtlasSettings(cluster=registry.ClusterSettings(trials=1))
    registry.add(
        wh, registry.AtlasRecord(atlas=ATLAS, model_id="Qwen/Qwen3-32B", num_layers=LAYERS, neurons_per_layer=NPL, settings=settings)
    )


def _batch(rng: np.random.Generator, atlas: str, batch: str, key0: int) -> dict[str, pa.Table]:
    g, n = GRAPHS_PER_BATCH, NODES
    layer = rng.integers(0, LAYERS, size=(g, n), dtype=np.int16)
    # popularity: neuron rank = NPL * u^5 (sorted: a graph's first nodes are its most popular neurons),
    # scrambled per layer so popular neurons differ by layer
    rank = np.sort((NPL * rng.random((g, n)) ** 5).astype(np.int64), axis=1)
    neuron = (rank * 7919 + layer.astype(np.int64) * 104729) % NPL
    pos = rng.integers(0, 40, size=(g, n), dtype=np.int32)
    keys = np.arange(key0, key0 + g, dtype=np.int64)
    # links between node pairs of the same graph, popular nodes preferred (index n * u^2.5), ordered so the
    # source layer is lower; equal layers dropped
    a, b = (n * rng.random((2, g, LINKS)) ** 2.5).astype(np.int64)
    gi = np.repeat(np.arange(g), LINKS).reshape(g, LINKS)
    la, lb = layer[gi, a], layer[gi, b]
    keep = la != lb
    src = np.where(la < lb, a, b)[keep]
    tgt = np.where(la < lb, b, a)[keep]
    gk = gi[keep]
    links = len(src)
    weight = rng.standard_normal(links) * 0.05
    nodes = pa.table(
        {
            "graph_key": np.repeat(keys, n),
            "kind": pa.array(["neuron"] * (g * n)),
            "layer": layer.ravel(),
            "feature": neuron.ravel(),
            "position": pos.ravel(),
            "influence": rng.standard_normal(g * n),
            "activation": rng.random(g * n),
            "node_id": pa.nulls(g * n, pa.string()),
            "feature_type": pa.nulls(g * n, pa.string()),
            "clerp": pa.nulls(g * n, pa.string()),
        }
    )
    link_rows = pa.table(
        {
            "graph_key": keys[gk],
            "src_kind": pa.array(["neuron"] * links),
            "src_layer": layer[gk, src],
            "src_feature": neuron[gk, src],
            "src_pos": pos[gk, src],
            "tgt_kind": pa.array(["neuron"] * links),
            "tgt_layer": layer[gk, tgt],
            "tgt_feature": neuron[gk, tgt],
            "tgt_pos": pos[gk, tgt],
            "weight": weight,
        }
    )
    graph_rows = pa.table(
        {
            "graph_id": [hashlib.sha256(f"{atlas}:{k}".encode()).hexdigest() for k in keys],
            "graph_key": keys,
            "source_path": [f"synthetic/{k}.json" for k in keys],
            "slug": pa.nulls(g, pa.string()),
            "scan": pa.nulls(g, pa.string()),
            "prompt": [f"prompt {k}" for k in keys],
            "prompt_tokens": pa.nulls(g, pa.list_(pa.string())),
            "corpus_index": keys,
            "node_threshold": np.full(g, 0.8),
            "metric_value": np.zeros(g),
            "target_position": np.zeros(g, np.int32),
            "nodes_exceeded": np.zeros(g, bool),
            "node_count": np.full(g, n, np.int32),
            "neuron_count": np.full(g, n, np.int32),
            "link_count": np.bincount(gk, minlength=g).astype(np.int32),
            "dangling_links": np.zeros(g, np.int32),
            "ambiguous_links": np.zeros(g, np.int32),
            "zero_weight_links": np.zeros(g, np.int32),
            "error_nodes": np.zeros(g, np.int32),
            "generator": pa.nulls(g, pa.string()),
            "transcoder_set": pa.nulls(g, pa.string()),
        }
    )
    return {"graphs": graph_rows, "graph_nodes": nodes, "graph_links": link_rows}


def _with_batch(t: pa.Table, atlas: str, batch: str) -> pa.Table:
    t = t.append_column("atlas", pa.array([atlas] * t.num_rows, pa.string()))
    return t.append_column("batch", pa.array([batch] * t.num_rows, pa.string()))


def _marker(batch: str, job: str, source: str | None, started, content: str, landed: int, rows: dict) -> dict:
    return {
        "atlas": ATLAS,
        "batch": batch,
        "job": job,
        "source": source,
        "started_at": started,
        "finished_at": now(),
        "version": "bench",
        "inputs": ["synthetic"],
        "content_hash": hashlib.sha256(content.encode()).hexdigest(),
        "landed": landed,
        "skipped": 0,
        "rejected": 0,
        "rows": lake.rows_json(rows),
    }


def _commit_markers(wh: Warehouse, markers: list[dict]) -> None:
    """The commit point: the batches' `ingest_batches` rows, after their data."""
    lake.append(wh, "ingest_batches", pa.Table.from_pylist(markers, lake.TABLES["ingest_batches"].schema))


def write_batches(wh: Warehouse, batches: int, seed: int, per_commit: int = 8, progress=None) -> int:
    """Land `batches` new 256-graph batches; returns the neuron->neuron links written."""
    rng = np.random.default_rng(seed)
    written = 0
    for start in range(0, batches, per_commit):
        parts, markers = {}, []
        for i in range(start, min(batches, start + per_commit)):
            batch = new_batch_id("graphs")
            started = now()
            tables = _batch(rng, ATLAS, batch, key0=(seed << 40) + i * GRAPHS_PER_BATCH)
            for name, t in tables.items():
                parts.setdefault(name, []).append(_with_batch(t, ATLAS, batch))
            written += tables["graph_links"].num_rows
            markers.append(
                _marker(batch, "graphs", None, started, f"{seed}:{i}", GRAPHS_PER_BATCH, {k: v.num_rows for k, v in tables.items()})
            )
        for name in ("graphs", "graph_nodes", "graph_links"):
            lake.append(wh, name, pa.concat_tables(parts[name]))
        _commit_markers(wh, markers)
        if progress:
            progress(len(markers))
    return written


def write_labels(wh: Warehouse, seed: int = 0) -> None:
    """One autointerp label per neuron for 97.9% of the grid (one batch, one commit per table)."""
    rng = np.random.default_rng(seed)
    words = np.array(["aspirin", "dosage", "french", "negation", "plural", "python", "date", "city", "rhyme", "legal"])
    layer = np.repeat(np.arange(LAYERS, dtype=np.int32), NPL)
    neuron = np.tile(np.arange(NPL, dtype=np.int32), LAYERS)
    keep = rng.random(len(layer)) < 0.979
    layer, neuron = layer[keep], neuron[keep]
    w = words[rng.integers(0, len(words), size=(2, len(layer)))]
    text = np.char.add(np.char.add(w[0], " "), w[1])
    count = len(layer)
    batch = new_batch_id("labels")
    rows = pa.table(
        {
            "source": pa.array(["bench"] * count),
            "pass": pa.array(["autointerp"] * count),
            "layer": layer,
            "neuron": neuron,
            "label": text.astype(object),
            "short_label": pa.nulls(count, pa.string()),
            "description": pa.nulls(count, pa.string()),
            "type": pa.nulls(count, pa.string()),
            "interpretability": pa.nulls(count, pa.string()),
            "confidence": pa.nulls(count, pa.string()),
            "labeler_model": pa.array(["bench"] * count),
            "max_activation": rng.random(count),
            "num_exemplars": np.full(count, 20, np.int32),
            "output_norm": pa.nulls(count, pa.float64()),
            "source_file": pa.array(["synthetic.jsonl"] * count),
            "record": pa.array(neuron.astype(str)),
        }
    )
    lake.append(wh, "labels", _with_batch(rows, ATLAS, batch))
    _commit_markers(wh, [_marker(batch, "labels", "bench", now(), "labels", count, {"labels": count})])
