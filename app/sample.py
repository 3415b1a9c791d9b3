"""A deterministic sample atlas corpus in the exact research formats (FORMATS.md section 1).

Graphs for a small model with planted circuits: `groups` sets of neurons spread across layers that
co-fire (a graph picks a few groups, and every member of a picked group appears with strong links
between members), over Zipf-distributed background neurons (a few hubs appear in most graphs).
Some graphs are `nodes_exceeded` (no neuron->neuron links), half use the viewer's string layers,
a quarter are gzipped, a fifth are pretty-printed. The same seed gives the same bytes.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

WORDS = [
    "The",
    " capital",
    " of",
    " France",
    " is",
    " Paris",
    " aspirin",
    " dose",
    " patient",
    " coin",
    " mint",
    " river",
    " bank",
    " poem",
    " rhyme",
    " code",
    " def",
    " return",
    " 1",
    " 2",
    ",",
    ".",
    " and",
    " the",
    " heart",
    " drug",
    " city",
    " king",
    " queen",
    " water",
    " fire",
    " light",
    " data",
    " table",
]


@dataclass(frozen=True)
class SampleSpec:
    """The knobs of the sample corpus (the benchmark turns `graphs` and the node range up)."""

    graphs: int = 300
    layers: int = 8
    neurons_per_layer: int = 512
    seed: int = 0
    min_nodes: int = 300
    max_nodes: int = 500
    groups: int = 24
    group_size: int = 10
    vocab: int = 32000
    pretty_every: int = 5  # every n-th file is written with indent=2 (real corpora: every file)
    computed_wiring: bool = True  # the tiny model's wiring computed with torch (when installed), else drawn at random


def planted_groups(spec: SampleSpec) -> list[list[tuple[int, int]]]:
    """The planted circuits: `groups` disjoint neuron sets, each spread over the layers."""
    rng = np.random.default_rng([spec.seed, 7])
    pool = rng.permutation(spec.layers * spec.neurons_per_layer)[: spec.groups * spec.group_size]
    out = []
    for g in range(spec.groups):
        members = pool[g * spec.group_size : (g + 1) * spec.group_size]
        # spread each group across layers: member i sits at layer i * layers / size
        out.append(sorted(((i * spec.layers) // spec.group_size, int(m % spec.neurons_per_layer)) for i, m in enumerate(members)))
    return out


def make_graph(spec: SampleSpec, index: int, groups: list[list[tuple[int, int]]]) -> dict:
    rng = np.random.default_rng([spec.seed, index])
    n_pos = int(rng.integers(10, 31))
    tokens = ["<bos>"] + [WORDS[int(t)] for t in rng.integers(0, len(WORDS), n_pos - 1)]
    token_ids = [int(t) for t in rng.integers(0, spec.vocab, n_pos)]
    exceeded = rng.random() < 0.04
    viewer = index % 2 == 1  # the viewer's formatting: string layers
    target = int(rng.integers(0, spec.min_nodes + 1, 1)[0] % 200) + spec.min_nodes
    target = min(target, spec.max_nodes)

    nodes: dict[tuple[int, int, int], dict] = {}

    def add_neuron(layer: int, neuron: int, pos: int) -> tuple[int, int, int]:
        key = (layer, neuron, pos)
        if key not in nodes:
            nodes[key] = {"influence": float(rng.normal(0, 1)), "activation": float(abs(rng.normal(1, 1)))}
        return key

    group_copies = []
    for g in rng.choice(len(groups), size=3, replace=False):
        pos = int(rng.integers(0, n_pos - 1))
        for p in [pos, pos + 1] if rng.random() < 0.3 else [pos]:  # a second copy: same pairs at two positions
            group_copies.append([add_neuron(layer, neuron, p) for layer, neuron in groups[int(g)]])
    total = spec.layers * spec.neurons_per_layer
    popularity = 1.0 / np.arange(1, total + 1) ** 1.1
    popularity /= popularity.sum()
    order = np.random.default_rng([spec.seed, 11]).permutation(total)  # which neurons are the hubs
    while len(nodes) < target:
        for f in order[rng.choice(total, size=target - len(nodes), p=popularity)]:
            add_neuron(int(f // spec.neurons_per_layer), int(f % spec.neurons_per_layer), int(rng.integers(0, n_pos)))

    keys = list(nodes)
    node_id = {k: f"{k[0]}_{k[1]}_{k[2]}" for k in keys}
    links: list[tuple[str, str, float]] = []
    if not exceeded:
        for copy in group_copies:
            for a in copy:
                for b in copy:
                    if a[0] < b[0] and a[2] <= b[2]:
                        links.append((node_id[a], node_id[b], float(rng.normal(0.5, 0.1))))
        n_random = int(rng.integers(8000, 16000))  # about a fifth respect layer and position order
        i, j = rng.integers(0, len(keys), n_random), rng.integers(0, len(keys), n_random)
        pairs = set()
        for a, b in zip(i.tolist(), j.tolist(), strict=False):
            ka, kb = keys[a], keys[b]
            if ka[0] < kb[0] and ka[2] <= kb[2] and (a, b) not in pairs:
                pairs.add((a, b))
                w = float(rng.normal(0, 0.05))
                links.append((node_id[ka], node_id[kb], w if abs(w) > 1e-10 else 1e-6))
    # embeddings feed the earliest neuron layer present at each position
    first_layer: dict[int, int] = {}
    for layer, _, pos in keys:
        first_layer[pos] = min(layer, first_layer.get(pos, layer))
    emb_links = [(f"E_{token_ids[k[2]]}_{k[2]}", node_id[k], float(rng.normal(1, 0.3))) for k in keys if first_layer[k[2]] == k[0]]
    logits = [int(t) for t in rng.integers(0, spec.vocab, int(rng.integers(1, 4)))]
    last = n_pos - 1
    logit_links = [(node_id[k], f"L_{t}_{last}", float(rng.normal(0, 0.2)) or 1e-6) for k in keys for t in logits]

    def layer_value(v: int | str):
        return str(v) if viewer else v

    out_nodes = [
        {
            "node_id": f"E_{token_ids[p]}_{p}",
            "feature": token_ids[p],
            "layer": "E" if viewer else -1,
            "ctx_idx": p,
            "feature_type": "embedding",
            "jsNodeId": f"E_{token_ids[p]}_{p}",
            "clerp": f"Token: {tokens[p]}",
            "influence": None,
            "activation": 1.0,
            "isLogit": False,
        }
        for p in sorted(first_layer)
    ]
    for k in keys:
        out_nodes.append(
            {
                "node_id": node_id[k],
                "feature": k[1],
                "layer": layer_value(k[0]),
                "ctx_idx": k[2],
                "feature_type": "mlp_neuron",
                "jsNodeId": node_id[k],
                "clerp": f"L{k[0]}/N{k[1]}",
                "influence": nodes[k]["influence"],
                "activation": nodes[k]["activation"],
                "isLogit": False,
            }
        )
    top = max(k[0] for k in keys) + 1
    for t in logits:
        out_nodes.append(
            {
                "node_id": f"L_{t}_{last}",
                "feature": t,
                "layer": layer_value(top),
                "ctx_idx": last,
                "feature_type": "logit",
                "jsNodeId": f"L_{t}_{last}",
                "clerp": f" tok{t} (p=0.1)",
                "isLogit": True,
            }
        )
    gen = {
        "max_n_logits": 5,
        "node_threshold": 0.005,
        "metric_value": float(rng.uniform(50, 100)),
        "target_position": last,
        "nodes_exceeded": bool(exceeded),
    }
    return {
        "metadata": {
            "slug": f"relp-{index}",
            "scan": "sample-8x512",
            "prompt": "".join(tokens[1:]),
            "prompt_tokens": tokens,
            "node_threshold": 0.005,
            "target_position": last,
            "corpus_index": index,
            "original_prompt": "".join(tokens[1:]),
            "source": "sample",
            "info": {"description": "circuitlake sample", "generator": {"name": "circuitlake", "version": "0"}},
            "generation_settings": gen,
        },
        "qParams": {"pinnedIds": [], "supernodes": [], "linkType": "both"},
        "nodes": out_nodes,
        "links": [{"source": s, "target": t, "weight": w} for s, t, w in emb_links + links + logit_links],
        "nodes_exceeded": bool(exceeded),
    }


def write_graphs(spec: SampleSpec, out: Path) -> list[Path]:
    """Write the corpus under `out/graphs/`; returns the files written."""
    folder = out / "graphs"
    folder.mkdir(parents=True, exist_ok=True)
    groups = planted_groups(spec)
    written = []
    for i in range(spec.graphs):
        # msgspec writes the JSON and gzip runs at level 1: json.dumps took half of the graphs' writing time,
        # gzip's default level 9 a third (the demo's 300 graphs: 9.8 -> 5.0 s); the documents are the same
        text = msgspec.json.encode(make_graph(spec, i, groups))
        if i % spec.pretty_every == 0:
            text = msgspec.json.format(text, indent=2)
        path = folder / (f"graph_{i:05d}.json.gz" if i % 4 == 3 else f"graph_{i:05d}.json")
        path.write_bytes(gzip.compress(text, compresslevel=1, mtime=0) if path.suffix == ".gz" else text)
        written.append(path)
    return written


SAMPLE_ATLAS = "sample"


TOPICS = [
    "capital cities",
    "aspirin dosing",
    "coin minting",
    "river banks",
    "poetry rhyme",
    "python code",
    "heart medicine",
    "royal titles",
    "fire and light",
    "data tables",
    "numbers",
    "punctuation",
]


def topic_of(spec: SampleSpec) -> dict[tuple[int, int], str]:
    """The planted circuits' topics: members of group g are labeled with TOPICS[g % len(TOPICS)]."""
    return {m: TOPICS[g % len(TOPICS)] for g, members in enumerate(planted_groups(spec)) for m in members}


def write_labels(spec: SampleSpec, out: Path) -> list[Path]:
    """Label files in all four shapes under `out/labels/`, with realistic gaps, spellings and bad records."""
    folder = out / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([spec.seed, 13])
    topics = topic_of(spec)
    npl = spec.neurons_per_layer
    neurons = [(layer, n) for layer in range(spec.layers) for n in range(npl)]

    def text(layer: int, n: int, kind: str) -> str:
        return f"{topics.get((layer, n), WORDS[(layer * 31 + n) % len(WORDS)].strip() or 'token')} {kind} L{layer}/N{n}"

    def spelled(layer: int, n: int, i: int) -> str:  # the spellings in use
        return [f"L{layer}/N{n}", f"L{layer}/{n}", f"{layer}_{n}"][0 if i % 10 else (i // 10) % 3]

    # 2b enriched two-pass labels: ~60% of neurons, a few with an empty short label
    enriched = {}
    for i, (layer, n) in enumerate(neurons):
        if rng.random() < 0.6:
            enriched[spelled(layer, n, i)] = {
                "label": text(layer, n, "output"),
                "short_label": "" if rng.random() < 0.05 else text(layer, n, "short"),
                "output_function": f"When this neuron fires it promotes {text(layer, n, 'tokens')}",
                "type": "semantic",
                "interpretability": ["low", "medium", "high"][i % 3],
                "confidence": "llm-auto",
                "input_label": text(layer, n, "trigger"),
                "input_function": "This neuron activates when ...",
                "input_type": "combination",
                "input_interpretability": "medium",
                "input_confidence": "llm-auto",
                "autointerp_label": text(layer, n, "autointerp"),
            }
    enriched[f"L{spec.layers + 3}/N0"] = {"label": "outside the model"}  # a bad key
    (folder / "enriched.json").write_text(json.dumps(enriched, indent=1))

    # 2c function database: another ~25%
    db = {
        f"L{layer}/N{n}": {
            "neuron_id": f"L{layer}/N{n}",
            "layer": layer,
            "neuron_idx": n,
            "function_label": text(layer, n, "function"),
            "function_description": "...",
            "function_type": "routing",
            "interpretability": "medium",
            "confidence": "llm-auto",
            "input_label": text(layer, n, "input"),
            "output_norm": float(rng.uniform(0.5, 2.0)),
            "appearance_count": 1,
        }
        for layer, n in neurons
        if rng.random() < 0.25
    }
    (folder / "function_db.json").write_text(json.dumps({"neurons": db}))

    # 2a JSONL autointerp: ~70%, some lines without labels, a few bad lines
    lines = []
    for layer, n in neurons:
        if rng.random() < 0.7:
            labels = (
                []
                if rng.random() < 0.02
                else [
                    {
                        "label": text(layer, n, "autointerp"),
                        "metadata": {
                            "parsed_response": {
                                "label": text(layer, n, "autointerp"),
                                "description": f"fires on {text(layer, n, 'context')}",
                            }
                        },
                    }
                ]
            )
            lines.append(
                json.dumps(
                    {
                        "feature_id": layer * npl + n,
                        "labels": labels,
                        "feature_metadata": {"layer": layer, "neuron": n, "num_exemplars": 20, "max_activation": float(rng.uniform(1, 80))},
                    }
                )
            )
    lines.insert(5, '{"feature_id": 12, "labels": [')  # truncated line
    lines.insert(9, json.dumps({"feature_id": npl + 1, "labels": [], "feature_metadata": {"layer": 3, "neuron": 1}}))  # disagrees
    (folder / "autointerp.jsonl").write_text("\n".join(lines) + "\n")

    # appendix: per-neuron profiles with activation descriptions for ~98% of neurons
    profiles = [
        {
            "layer": layer,
            "neuron": n,
            "neuron_id": f"L{layer}/N{n}",
            "appearance_count": 1,
            "transluce_label_positive": text(layer, n, "activates on"),
            "transluce_label_negative": text(layer, n, "inhibited by"),
            "output_projection": {"promoted": [], "suppressed": [], "output_norm": float(rng.uniform(0.5, 2.0))},
        }
        for layer, n in neurons
        if rng.random() < 0.98
    ]
    (folder / "profiles.json").write_text(
        json.dumps({"metadata": {"total_prompts": spec.graphs}, "summary": {"total_neurons": len(profiles)}, "profiles": profiles})
    )
    return sorted(folder.iterdir())


def write_synthetic_wiring(spec: SampleSpec, out: Path) -> list[Path]:
    """A wiring cache of the sample's shape under `out/wiring_cache/` drawn at random (no model, no
    torch): 10 excitatory and 10 inhibitory connections per neuron and direction, to distinct neurons
    (as computed wiring has them: one polarity per pair), in the cache format."""
    rng = np.random.default_rng(spec.seed)
    folder = out / "wiring_cache"
    folder.mkdir(parents=True, exist_ok=True)

    def connections(layers: range) -> dict[str, list[dict]]:
        reachable = len(layers) * spec.neurons_per_layer
        picked = rng.choice(reachable, min(20, reachable), replace=False)  # distinct neurons of these layers
        half = len(picked) // 2
        found: dict[str, list[dict]] = {}
        for kind, sign, ids in (("excitatory", 1.0, picked[:half]), ("inhibitory", -1.0, picked[half:])):
            strengths = np.sort(rng.uniform(0.05, 1.0, len(ids)))[::-1] * sign
            found[kind] = [
                {
                    "layer": layers[int(i) // spec.neurons_per_layer],
                    "neuron": int(i) % spec.neurons_per_layer,
                    "effective_strength": round(float(s), 5),
                }
                for i, s in zip(ids, strengths, strict=True)
            ]
        return found

    paths = []
    for layer in range(spec.layers):
        entries = {}
        for n in range(spec.neurons_per_layer):
            entry: dict = {
                "projections": {
                    "promotes": [{"token": WORDS[int(rng.integers(0, len(WORDS)))], "weight": 0.4}],
                    "suppresses": [{"token": WORDS[int(rng.integers(0, len(WORDS)))], "weight": -0.3}],
                }
            }
            for direction, layers in (("upstream", range(layer)), ("downstream", range(layer + 1, spec.layers))):
                if layers:
                    entry[direction] = connections(layers)
            entries[str(n)] = entry
        path = folder / f"layer_{layer}.json"
        path.write_text(json.dumps(entries))
        paths.append(path)
    return paths


def write_wiring(spec: SampleSpec, out: Path) -> list[Path]:
    """A tiny random Llama-shaped checkpoint of the sample's shape under `out/model/`, and its wiring
    cache under `out/wiring_cache/`, written from the computed result. Without the `wiring` extra
    (torch, transformers), or when the spec asks for no computed wiring, the cache is drawn at random
    instead (`write_synthetic_wiring`)."""
    if not spec.computed_wiring:
        return write_synthetic_wiring(spec, out)
    try:
        import torch  # the optional `wiring` extra: imported only when a wiring cache is wanted
        import transformers  # noqa: F401 (tiny_model needs it)
    except ImportError:
        return write_synthetic_wiring(spec, out)

    from circuitlake.ingest.wiring_compute import Checkpoint, compute_layer, tiny_model, write_cache

    model = tiny_model("llama", spec.layers, spec.neurons_per_layer, seed=spec.seed)
    model.save_pretrained(out / "model")
    ckpt = Checkpoint(out / "model")
    return [write_cache(compute_layer(ckpt, layer, 10, torch.float32, "cpu", 2048), out / "wiring_cache") for layer in range(spec.layers)]


def write_corpus(spec: SampleSpec, out: Path) -> int:
    """Write the whole sample corpus (graphs, labels, a tiny model and its wiring cache) under `out`."""
    return len(write_graphs(spec, out)) + len(write_labels(spec, out)) + len(write_wiring(spec, out))
