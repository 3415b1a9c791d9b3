"""Wiring compute throughput in matmul FLOP/s next to a plain torch matmul of the same shape (same run)."""

from __future__ import annotations

from pathlib import Path

from bench.measure import measure, table

HIDDEN, FFN, LAYERS = 1024, 4096, 16

STEP = """
import time, torch
from pathlib import Path
from circuitlake.ingest.wiring_compute import Checkpoint, compute_layer, tiny_model
torch.set_num_threads({threads})
folder = Path({folder!r})
if not (folder / "model.safetensors").exists() and not list(folder.glob("*.safetensors")):
    tiny_model("llama", {layers}, {ffn}, hidden={hidden}, vocab=1024, seed=0).save_pretrained(folder)
ckpt = Checkpoint(folder)
a, b = torch.randn({ffn}, {hidden}), torch.randn({hidden}, {ffn})
a @ b
t = time.perf_counter(); n = 0
while time.perf_counter() - t < 5:
    a @ b; n += 1
peak = 2 * {ffn} * {hidden} * {ffn} * n / (time.perf_counter() - t)
flops = seconds = 0
for layer in {layers_run}:
    t = time.perf_counter()
    r = compute_layer(ckpt, layer, 10, torch.float32, "{device}", {block})
    seconds += time.perf_counter() - t; flops += r.flops
print(f"{{flops}} {{seconds}} {{peak}}")
"""


def run(work: Path, threads: int = 2, device: str = "cpu") -> str:
    work.mkdir(parents=True, exist_ok=True)
    layers_run = [0, LAYERS // 2, LAYERS - 1]
    rows = []
    for block in (1024, 4096):
        m = measure(
            STEP.format(
                folder=str(work / "model"),
                layers=LAYERS,
                ffn=FFN,
                hidden=HIDDEN,
                layers_run=layers_run,
                device=device,
                block=block,
                threads=threads,
            )
        )
        flops, seconds, peak = map(float, m.output.strip().splitlines()[-1].split())
        rows.append(
            [
                device,
                block,
                f"{flops / 1e12:.2f}",
                f"{seconds:.1f}",
                f"{flops / seconds / 1e9:.1f}",
                f"{peak / 1e9:.1f}",
                f"{flops / seconds / peak:.0%}",
                f"{m.peak_rss_mb:.0f}",
            ]
        )
    return (
        f"## Wiring from weights\n\nA random Llama-shaped checkpoint (hidden {HIDDEN}, d_ffn {FFN}, {LAYERS} layers, float32), "
        f"`compute_layer` for layers {layers_run} (each: upstream and downstream against every other layer, plus the "
        f"projections), {threads} torch threads. FLOPs count the 2*m*n*k of the products only; the sign masks and the "
        "streaming top-k are extra memory-bound work. The limit is a plain torch matmul of the same shape "
        f"({FFN} x {HIDDEN} @ {HIDDEN} x {FFN}) measured in the same process. No GPU was lent to this session, so "
        "`--device cuda` is not measured here.\n\n"
        + table(["device", "block rows", "TFLOP", "seconds", "GFLOP/s", "matmul limit GFLOP/s", "ratio", "peak RSS MB"], rows)
        + "\n"
    )
