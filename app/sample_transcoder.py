"""A deterministic transcoder-feature corpus in the shapes circuit-tracer and Neuronpedia write.

Graphs for a small model with a transcoder set, made as circuit-tracer's graph writer makes them
(`circuit_tracer/frontend/graph_models.py` and its graph-file writer), in the three generations that
circulate: circuit-tracer 0.2 (`feature` = Cantor pairing of layer and index, error ids
"{layer}_-1_{pos}"), Neuronpedia's generator 1.0.0 (`feature` = layer * 100000 + index, error ids
"0_{layer}_{pos}", display labels in `clerp`), and older files (`feature` = index + 10^ceil(log10(d))
* layer, error ids "0_{layer}_{pos}"). Every graph has error nodes (`feature: -1`), embeddings with
`feature = pos`, neuron-shaped logit ids "{n_layers+1}_{vocab}_{pos}", and zero-weight links (to
lower layers, self-loops); Neuronpedia's graphs also hold an error node whose id equals a layer-0
feature's, with links from both. Planted circuits: `groups` sets of features across layers that
co-fire. Beside them, Neuronpedia's explanation exports of those features: the API's JSON array and
the bulk export's gzipped JSONL, some features with two explanations. The same seed gives the same bytes.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from circuitlake.app.sample import WORDS

TRANSCODER_ATLAS = "sample-clt"
TOPICS = ["capital cities", "the number nine", "aspirin dosing", "rhyming words", "river banks", "python code", "royalty"]


@dataclass(frozen=True)
class TranscoderSpec:
    """The knobs of the transcoder sample corpus."""

    graphs: int = 48
    layers: int = 6
    features_per_layer: int = 2048
    groups: int = 7  # planted circuits, one per topic
    group_size: int = 6
    background: int = 10  # other active features per graph
    seed: int = 7


def cantor(layer: int, index: int) -> int:
    """circuit-tracer 0.2's `feature`: the Cantor pairing of layer and index (beyond int32 for real sets)."""
    return (layer + index) * (layer + index + 1) // 2 + index


ENCODINGS = {
    "circuit-tracer 0.2": cantor,
    "neuronpedia 1.0.0": lambda layer, index: layer * 100_000 + index,
    "circuit-tracer early": None,  # index + 10^ceil(log10(d_transcoder)) * layer: set per spec
}


def planted_features(spec: TranscoderSpec) -> list[list[tuple[int, int]]]:
    """Each topic's features: (layer, index), spread over the layers in ascending order."""
    rng = np.random.default_rng(spec.seed)
    return [
        sorted(
            (int(layer), int(rng.integers(0, spec.features_per_layer)))
            for layer in np.linspace(0, spec.layers - 1, spec.group_size).round()
        )
        for _ in range(spec.groups)
    ]


def make_graph(spec: TranscoderSpec, i: int, groups: list[list[tuple[int, int]]]) -> tuple[str, dict]:
    """Graph `i` in one producer's shape (cycling through ENCODINGS); returns (producer, graph)."""
    rng = np.random.default_rng(spec.seed * 1000 + i)
    producer = list(ENCODINGS)[i % len(ENCODINGS)]
    offset = 10 ** math.ceil(math.log10(spec.features_per_layer))
    encode = ENCODINGS[producer] or (lambda layer, index: index + offset * layer)
    n_pos = int(rng.integers(6, 10))
    tokens = [int(t) for t in rng.integers(0, len(WORDS), n_pos)]
    topic = int(rng.integers(0, len(groups)))
    positions = sorted(int(p) for p in rng.integers(1, n_pos, len(groups[topic])))  # a circuit flows forward
    active = {(layer, index, pos) for (layer, index), pos in zip(groups[topic], positions, strict=True)}
    active |= {
        (int(rng.integers(0, spec.layers)), int(rng.integers(0, spec.features_per_layer)), int(rng.integers(1, n_pos)))
        for _ in range(spec.background)
    }
    labeled = producer == "neuronpedia 1.0.0"  # graphs downloaded from Neuronpedia carry the displayed label
    topic_of = {f: TOPICS[t] for t, g in enumerate(groups) for f in g}
    nodes, links = [], []

    def feature_node(layer: int, index: int, pos: int) -> dict:
        return {
            "node_id": f"{layer}_{index}_{pos}",
            "feature": encode(layer, index),
            "layer": str(layer),
            "ctx_idx": pos,
            "feature_type": "cross layer transcoder",
            "token_prob": 0.0,
            "is_target_logit": False,
            "run_idx": 0,
            "reverse_ctx_idx": 0,
            "jsNodeId": f"{layer}_{index}-0",
            "clerp": topic_of.get((layer, index), "") if labeled else "",
            "influence": round(float(rng.uniform(0.1, 0.9)), 4),
            "activation": round(float(rng.uniform(0.5, 20.0)), 3),
        }

    def error_id(layer: int, pos: int) -> str:
        return f"{layer}_-1_{pos}" if producer == "circuit-tracer 0.2" else f"0_{layer}_{pos}"

    features = sorted(active)
    for layer, index, pos in features:
        nodes.append(feature_node(layer, index, pos))
    errors = sorted({(int(rng.integers(1, spec.layers)), int(rng.integers(1, n_pos))) for _ in range(3)})
    if labeled:  # an error id that equals a layer-0 feature's id ("0_{layer}_{pos}"): links naming it are ambiguous
        shared_layer, shared_pos = 3, features[0][2]
        if (0, shared_layer, shared_pos) not in active:
            nodes.append(feature_node(0, shared_layer, shared_pos))
            features.append((0, shared_layer, shared_pos))
        errors.append((shared_layer, shared_pos))
    for layer, pos in errors:
        nodes.append(
            {
                "node_id": error_id(layer, pos),
                "feature": -1,
                "layer": str(layer),
                "ctx_idx": pos,
                "feature_type": "mlp reconstruction error",
                "jsNodeId": f"{layer}_{pos}-0",
                "clerp": f'Err: mlp "{WORDS[tokens[pos]]}"' if labeled else "",
                "influence": round(float(rng.uniform(0.1, 0.5)), 4),
                "activation": None,
            }
        )
    for pos, token in enumerate(tokens):
        nodes.append(
            {
                "node_id": f"E_{token}_{pos}",
                "feature": pos,  # circuit-tracer writes the position here, not the token
                "layer": "E",
                "ctx_idx": pos,
                "feature_type": "embedding",
                "jsNodeId": f"E_{token}-{pos}",
                "clerp": f'Emb: "{WORDS[token]}"' if labeled else "",
            }
        )
    logits = [int(t) for t in rng.choice(len(WORDS), 2, replace=False)]
    for rank, vocab in enumerate(logits):
        nodes.append(
            {
                "node_id": f"{spec.layers + 1}_{vocab}_{n_pos - 1}",  # the shape of a feature id
                "feature": vocab,
                "layer": str(spec.layers + 1),
                "ctx_idx": n_pos - 1,
                "feature_type": "logit",
                "token_prob": 0.6 if rank == 0 else 0.2,
                "is_target_logit": rank == 0,
                "jsNodeId": f"L_{vocab}-{n_pos - 1}",
                "clerp": f'Output "{WORDS[vocab]}" (p={0.6 if rank == 0 else 0.2:.3f})',
            }
        )

    def link(source: str, target: str, weight: float) -> None:
        links.append({"source": source, "target": target, "weight": weight})

    for s in features:
        for t in features:
            if s[0] < t[0] and s[2] <= t[2] and (topic_of.get(s[:2]) == topic_of.get(t[:2]) is not None or rng.random() < 0.3):
                link(f"{s[0]}_{s[1]}_{s[2]}", f"{t[0]}_{t[1]}_{t[2]}", round(float(rng.normal(0.8, 0.3)), 5))
        link(f"E_{tokens[s[2]]}_{s[2]}", f"{s[0]}_{s[1]}_{s[2]}", round(float(rng.uniform(0.1, 2.0)), 5))
        link(f"{s[0]}_{s[1]}_{s[2]}", f"{spec.layers + 1}_{logits[0]}_{n_pos - 1}", round(float(rng.normal(0.5, 0.2)), 5))
    for layer, pos in errors:
        for t in features:
            if layer < t[0] and pos <= t[2]:
                link(error_id(layer, pos), f"{t[0]}_{t[1]}_{t[2]}", round(float(rng.uniform(0.05, 0.3)), 5))
    top = max(features)  # real files: zero-weight links from one node, to lower layers and to itself
    for t in features:
        link(f"{top[0]}_{top[1]}_{top[2]}", f"{t[0]}_{t[1]}_{t[2]}", 0.0)
    prompt_tokens = ["<bos>"] + [WORDS[t] for t in tokens[1:]]
    metadata = {
        "slug": f"sample-clt-{i}",
        "scan": "circuitlake/sample-clt",
        "transcoder_list": [],
        "prompt_tokens": prompt_tokens,
        "prompt": "".join(prompt_tokens[1:]),
        "node_threshold": 0.8,
        "schema_version": 1,
    }
    if labeled:
        metadata["info"] = {
            "creator_name": "circuitlake sample",
            "source_urls": [],
            "transcoder_set": "sample-clt-hp",
            "generator": {"name": "neuronpedia-graph-generator", "version": "1.0.0", "url": ""},
            "create_time_ms": 1_750_000_000_000 + i,
        }
        metadata["generation_settings"] = {"max_n_logits": 2, "node_threshold": 0.8, "edge_threshold": 0.98}
    q_params = {"pinnedIds": [], "supernodes": [], "linkType": "both", "clickedId": "", "sg_pos": ""}
    return producer, {"metadata": metadata, "qParams": q_params, "nodes": nodes, "links": links}


def write_graphs(spec: TranscoderSpec, out: Path) -> list[Path]:
    """Write the graphs under out/ (indent=2 as circuit-tracer writes them; every fourth gzipped)."""
    out.mkdir(parents=True, exist_ok=True)
    groups = planted_features(spec)
    paths = []
    for i in range(spec.graphs):
        _, graph = make_graph(spec, i, groups)
        data = json.dumps(graph, indent=2).encode()
        path = out / (f"clt_{i:04d}.json.gz" if i % 4 == 3 else f"clt_{i:04d}.json")
        path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
        paths.append(path)
    return paths


def explanation(spec: TranscoderSpec, layer: int, index: int, description: str, n: int, as_int: bool) -> dict:
    """One Neuronpedia explanation record (the export's fields)."""
    return {
        "id": f"clx{layer:02d}{index:06d}{n}",
        "modelId": "sample-clt",
        "layer": f"{layer}-clt-hp",
        "index": index if as_int else str(index),
        "description": description,
        "typeName": "oai_token-act-pair" if n == 0 else "np_acts-logits-general",
        "explanationModelName": "gpt-4o-mini" if n == 0 else "claude-3-5-haiku-20241022",
        "authorId": "sample-author",
        "triggeredByUserId": None,
        "notes": None,
        "scoreV1": 0.5,
        "umap_x": None,
        "createdAt": "2025-06-01T00:00:00.000Z",
    }


def write_explanations(spec: TranscoderSpec, out: Path) -> list[Path]:
    """Neuronpedia explanation exports of the planted features: the API's JSON array (layers below the
    middle) and the bulk export's gzipped JSONL (the rest); every third feature has a second explanation."""
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for topic, group in zip(TOPICS, planted_features(spec), strict=False):
        for k, (layer, index) in enumerate(group):
            records.append(explanation(spec, layer, index, topic, 0, as_int=k % 2 == 0))
            if k % 3 == 0:
                records.append(explanation(spec, layer, index, f"{topic} (alternative wording)", 1, as_int=False))
    middle = spec.layers // 2
    api = out / "explanations_export.json"
    api.write_text(json.dumps([r for r in records if int(r["layer"].split("-")[0]) < middle], indent=2))
    bulk = out / "explanations_bulk.jsonl.gz"
    lines = "".join(json.dumps(r) + "\n" for r in records if int(r["layer"].split("-")[0]) >= middle)
    bulk.write_bytes(gzip.compress(lines.encode(), mtime=0))
    return [api, bulk]


def write_corpus(spec: TranscoderSpec, out: Path) -> int:
    """Graphs under out/graphs, explanation exports under out/labels; returns the number of graphs."""
    write_graphs(spec, out / "graphs")
    write_explanations(spec, out / "labels")
    return spec.graphs
