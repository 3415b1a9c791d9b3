"""`circuitlake wiring compute`: weight-based wiring of SwiGLU MLPs from a local safetensors checkpoint.

Neuron t of layer L: a_t = SiLU(W_gate[t] x) * (W_up[t] x); neuron s of layer L' < L writes d_s =
W_down^(L')[:, s]. c_up = W_up^(L)[t] . d_s, c_gate = W_gate^(L)[t] . d_s; both > 0: excitatory,
both < 0: inhibitory, effective_strength = c_up + c_gate (= +-(|c_up| + |c_gate|)); mixed: excluded.
For each neuron, the top-k excitatory and top-k inhibitory connections per direction across all
layers jointly, as blocked matrix products with a streaming top-k (never the N x N matrix); output
projections W_U d_s (top promoted / suppressed tokens) and ||d_s||.

Tensors are found by name (`...layers.{i}.mlp.{gate,up,down}_proj.weight`, `lm_head.weight` or the tied
embedding), read lazily from safetensors a layer at a time. One neuron layer is one lake batch (its
upstream and downstream lists and projections, like a cache layer file), so a run resumes per layer.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open

from circuitlake import locks, registry
from circuitlake.errors import UserError
from circuitlake.formats.wiring_cache import CACHE_LAYER_FILE, Connection, Lists, NeuronWiring, Projections, Token
from circuitlake.ingest.wiring import committed_layer_hashes, land_layer
from circuitlake.lake import IngestReport, content_hash
from circuitlake.progress import bar
from circuitlake.settings import Warehouse

MLP_TENSOR = re.compile(r"(?:^|\.)layers\.(\d+)\.mlp\.(gate_proj|up_proj|down_proj)\.weight$")
UNEMBEDDING = ("lm_head.weight", "model.embed_tokens.weight", "embed_tokens.weight", "transformer.wte.weight")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64}


class Checkpoint:
    """A local Hugging Face checkpoint's tensors by name, opened lazily (nothing is loaded up front)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.files = sorted(folder.glob("*.safetensors"))
        if not self.files:
            raise UserError(f"{folder}: no .safetensors files (a local Hugging Face checkpoint folder)")
        self.where: dict[str, Path] = {}
        for f in self.files:
            with safe_open(str(f), framework="pt") as st:
                self.where.update((name, f) for name in st.keys())
        self.layers: dict[int, dict[str, str]] = {}
        for name in self.where:
            if m := MLP_TENSOR.search(name):
                self.layers.setdefault(int(m[1]), {})[m[2]] = name
        if not self.layers or any(len(v) != 3 for v in self.layers.values()):
            raise UserError(f"{folder}: no SwiGLU MLP tensors (layers.<i>.mlp.gate_proj/up_proj/down_proj.weight)")
        self.unembedding = next((n for n in UNEMBEDDING if n in self.where), None)

    def tensor(self, name: str, dtype: torch.dtype, device: str) -> torch.Tensor:
        with safe_open(str(self.where[name]), framework="pt") as st:
            return st.get_tensor(name).to(device=device, dtype=dtype)

    def mlp(self, layer: int, kind: str, dtype: torch.dtype, device: str) -> torch.Tensor:
        return self.tensor(self.layers[layer][kind], dtype, device)

    def content_hash(self) -> str:
        """sha256 over the safetensors files (streamed): the provenance of computed wiring."""
        h = hashlib.sha256()
        for f in self.files:
            with f.open("rb") as fh:
                while block := fh.read(1 << 24):
                    h.update(block)
        return h.hexdigest()


@dataclass
class TopK:
    """Running top-k of one polarity for a set of owner neurons: values, other-neuron ids, c_up, c_gate."""

    k: int
    largest: bool
    rows: int
    device: str
    values: torch.Tensor = field(init=False)
    ids: torch.Tensor = field(init=False)
    c_up: torch.Tensor = field(init=False)
    c_gate: torch.Tensor = field(init=False)

    def __post_init__(self):
        # k empty slots (+-inf) from the start: a slot never filled is dropped by `lists`
        self.values = torch.full((self.rows, self.k), float("-inf") if self.largest else float("inf"), device=self.device)
        self.ids = torch.zeros((self.rows, self.k), dtype=torch.long, device=self.device)
        self.c_up = torch.zeros((self.rows, self.k), device=self.device)
        self.c_gate = torch.zeros((self.rows, self.k), device=self.device)

    def update(self, start: int, strength: torch.Tensor, c_up: torch.Tensor, c_gate: torch.Tensor, id_offset: int) -> None:
        """Merge a block's candidates (rows start.., columns = other neurons id_offset..) into the top-k."""
        v, ix = torch.topk(strength, min(self.k, strength.shape[1]), dim=1, largest=self.largest)
        rows = slice(start, start + strength.shape[0])
        cand = [
            torch.cat([old[rows], new], 1)
            for old, new in (
                (self.values, v),
                (self.ids, ix + id_offset),
                (self.c_up, c_up.gather(1, ix)),
                (self.c_gate, c_gate.gather(1, ix)),
            )
        ]
        best, pick = torch.topk(cand[0], self.k, dim=1, largest=self.largest)
        picked = [best] + [c.gather(1, pick) for c in cand[1:]]
        for state, value in zip((self.values, self.ids, self.c_up, self.c_gate), picked, strict=True):
            state[rows] = value

    def lists(self, npl: int, polarity: str) -> list[list[Connection]]:
        """Per owner neuron, its connections strongest first (slots never filled are dropped). Built without
        pydantic's validation (`model_construct`): every value is already of its field's type (ints and floats
        from the tensors), and validating ~250K of them was half of a small model's wiring time."""
        out = []
        for vals, ids, cu, cg in zip(*(t.cpu().tolist() for t in (self.values, self.ids, self.c_up, self.c_gate)), strict=False):
            out.append(
                [
                    Connection.model_construct(
                        layer=i // npl, neuron=i % npl, effective_strength=v, c_up=u, c_gate=g, predicted_polarity=polarity
                    )
                    for v, i, u, g in zip(vals, ids, cu, cg, strict=False)
                    if v not in (float("inf"), float("-inf"))
                ]
            )
        return out


@dataclass
class LayerWiring:
    layer: int
    neurons: list[NeuronWiring]
    output_norm: list[float]
    flops: int


def _connect(
    owner_rows: torch.Tensor,
    owner_rows_gate: torch.Tensor | None,
    other: torch.Tensor,
    other_gate: torch.Tensor | None,
    upstream: bool,
    states: tuple[TopK, TopK],
    id_offset: int,
    block_rows: int,
) -> int:
    """Update the owner neurons' top-k with one other layer; returns the matmul FLOPs.

    upstream: owners are targets (rows of W_up/W_gate), `other` is W_down of the source layer.
    downstream: owners are sources (columns of their W_down, passed transposed), `other` is the
    target layer's W_up with `other_gate` its W_gate.
    """
    flops = 0
    for start in range(0, owner_rows.shape[0], block_rows):
        if upstream:
            assert owner_rows_gate is not None
            c_up = owner_rows[start : start + block_rows] @ other
            c_gate = owner_rows_gate[start : start + block_rows] @ other
        else:
            assert other_gate is not None
            d = owner_rows[start : start + block_rows]  # (b, d_model): the sources' down columns
            c_up, c_gate = d @ other.T, d @ other_gate.T
        flops += 2 * 2 * c_up.shape[0] * c_up.shape[1] * (other.shape[0] if upstream else other.shape[1])
        strength = c_up + c_gate
        excitatory, inhibitory = states
        excitatory.update(
            start, torch.where((c_up > 0) & (c_gate > 0), strength, float("-inf")).float(), c_up.float(), c_gate.float(), id_offset
        )
        inhibitory.update(
            start, torch.where((c_up < 0) & (c_gate < 0), strength, float("inf")).float(), c_up.float(), c_gate.float(), id_offset
        )
    return flops


def compute_layer(
    ckpt: Checkpoint, layer: int, top_k: int, dtype: torch.dtype, device: str, block_rows: int, tokens: dict[int, str] | None = None
) -> LayerWiring:
    """Upstream and downstream lists, projections and output norms for the neurons of one layer."""
    n_layers = max(ckpt.layers) + 1
    up, gate, down = (ckpt.mlp(layer, k, dtype, device) for k in ("up_proj", "gate_proj", "down_proj"))
    npl = up.shape[0]
    flops = 0
    directions = {}
    for direction, others in (("upstream", range(layer)), ("downstream", range(layer + 1, n_layers))):
        states = (TopK(top_k, True, npl, device), TopK(top_k, False, npl, device))
        for other in others:
            if direction == "upstream":
                flops += _connect(up, gate, ckpt.mlp(other, "down_proj", dtype, device), None, True, states, other * npl, block_rows)
            else:
                flops += _connect(
                    down.T,
                    None,
                    ckpt.mlp(other, "up_proj", dtype, device),
                    ckpt.mlp(other, "gate_proj", dtype, device),
                    False,
                    states,
                    other * npl,
                    block_rows,
                )
        directions[direction] = [
            Lists(excitatory=e, inhibitory=i)
            for e, i in zip(states[0].lists(npl, "excitatory"), states[1].lists(npl, "inhibitory"), strict=True)
        ]
    projections = [Projections() for _ in range(npl)]
    if ckpt.unembedding:
        unembed = ckpt.tensor(ckpt.unembedding, dtype, device)
        for start in range(0, npl, block_rows):
            logits = (unembed @ down[:, start : start + block_rows]).T.float()  # (b, vocab)
            flops += 2 * logits.shape[0] * logits.shape[1] * unembed.shape[1]
            for kind, largest in (("promotes", True), ("suppresses", False)):
                v, ix = torch.topk(logits, min(top_k, logits.shape[1]), dim=1, largest=largest)
                for row, (vals, ids) in enumerate(zip(v.cpu().tolist(), ix.cpu().tolist(), strict=False)):
                    setattr(
                        projections[start + row],
                        kind,
                        [Token(token_id=i, token=(tokens or {}).get(i), weight=w) for w, i in zip(vals, ids, strict=False)],
                    )
    norms = torch.linalg.vector_norm(down.float(), dim=0).cpu().tolist()
    neurons = [
        NeuronWiring(upstream=u, downstream=d, projections=p)
        for u, d, p in zip(directions["upstream"], directions["downstream"], projections, strict=False)
    ]
    return LayerWiring(layer, neurons, norms, flops)


def load_tokens(folder: Path) -> dict[int, str] | None:
    """Token strings from a local tokenizer, when the checkpoint folder has one (never downloads)."""
    if not any((folder / f).exists() for f in ("tokenizer.json", "tokenizer_config.json")):
        return None
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    return {i: str(tok.decode([i])) for i in range(len(tok))}


@locks.writes_atlas("wiring compute")
def compute_wiring(
    wh: Warehouse,
    atlas_name: str,
    model_dir: str | Path,
    *,
    top_k: int = 10,
    device: str = "cpu",
    dtype: str = "float32",
    block_rows: int = 2048,
    show_progress: bool = True,
) -> IngestReport:
    """Compute and land the wiring of every layer not yet landed for this checkpoint and settings."""
    atlas = registry.get(wh, atlas_name)
    folder = Path(model_dir).resolve()
    ckpt = Checkpoint(folder)
    n_layers = max(ckpt.layers) + 1
    shape = (n_layers, ckpt.mlp(0, "up_proj", torch.float32, "cpu").shape[0])
    if shape != (atlas.num_layers, atlas.neurons_per_layer):
        raise UserError(
            f"{folder}: the checkpoint is {shape[0]} x {shape[1]} but atlas {atlas.name} is {atlas.num_layers} x {atlas.neurons_per_layer}"
        )
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype!r}: one of {', '.join(DTYPES)}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device here; use --device cpu")
    digest = ckpt.content_hash()
    source = f"weights:{digest[:16]}"
    tokens = load_tokens(folder)
    done = committed_layer_hashes(wh, atlas.name)
    report = IngestReport()
    with bar(show_progress) as progress:
        task = progress.add_task(f"wiring from weights -> {atlas.name}", total=n_layers)
        for layer in range(n_layers):
            layer_hash = hashlib.sha256(json.dumps([digest, layer, top_k, dtype]).encode()).hexdigest()
            if content_hash([layer_hash]) in done:
                report.skipped += 1
            else:
                result = compute_layer(ckpt, layer, top_k, DTYPES[dtype], device, block_rows, tokens)
                entries = ((str(n), (layer, n), entry, None) for n, entry in enumerate(result.neurons))
                land_layer(
                    wh, atlas, source, layer, layer_hash, [f"{folder}#{digest}"], entries, report, norms=dict(enumerate(result.output_norm))
                )
            progress.advance(task)
    return report


def write_cache(result: LayerWiring, folder: Path) -> Path:
    """Write one computed layer in the wiring-cache format (`layer_{i}.json`), as the research cache has it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"layer_{result.layer}.json"
    path.write_bytes(CACHE_LAYER_FILE.dump_json({str(n): entry for n, entry in enumerate(result.neurons)}, exclude_none=True))
    return path


def tiny_model(family: str, layers: int, neurons_per_layer: int, hidden: int = 64, vocab: int = 512, seed: int = 0):
    """A small random SwiGLU model of a family (llama | qwen3 | olmo3), built offline with `from_config`."""
    import transformers

    configs = {
        "llama": ("LlamaConfig", "LlamaForCausalLM"),
        "qwen3": ("Qwen3Config", "Qwen3ForCausalLM"),
        "olmo3": ("Olmo3Config", "Olmo3ForCausalLM"),
    }
    config_cls, model_cls = (getattr(transformers, n) for n in configs[family])
    config = config_cls(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=neurons_per_layer,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=hidden // 4,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    return model_cls._from_config(config) if hasattr(model_cls, "_from_config") else model_cls(config)
