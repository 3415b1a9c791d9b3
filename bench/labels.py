"""Label ingest memory: peak RSS as the label file grows 10x, against json.load of the whole file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench.measure import measure, table

LAYERS, NPL = 64, 25_600  # the Qwen3-32B shape

OURS = """
from circuitlake import lake, registry
from circuitlake.settings import warehouse
from circuitlake.ingest.labels import ingest_labels
wh = warehouse({warehouse!r}); lake.ensure(wh)
registry.add(wh, registry.AtlasRecord(atlas="bench", model_id="bench", num_layers={layers}, neurons_per_layer={npl}))
r = ingest_labels(wh, "bench", {path!r}, show_progress=False)
print(r.rows)
"""

BASELINE = """
import json
with open({path!r}) as f:
    data = [json.loads(line) for line in f] if {jsonl} else json.load(f)
print(len(data))
"""


def write(path: Path, n: int, jsonl: bool) -> None:
    with path.open("w") as f:
        if not jsonl:
            f.write("{")
        for i in range(n):
            layer, neuron = divmod(i, NPL)
            if jsonl:
                f.write(
                    json.dumps(
                        {
                            "feature_id": i,
                            "labels": [
                                {
                                    "label": f"label {i}",
                                    "metadata": {
                                        "parsed_response": {"label": f"label {i}", "description": f"fires on things like {i} in context"}
                                    },
                                }
                            ],
                            "feature_metadata": {"layer": layer, "neuron": neuron, "num_exemplars": 20, "max_activation": 1.5},
                        }
                    )
                    + "\n"
                )
            else:
                f.write(
                    ("," if i else "")
                    + json.dumps(f"L{layer}/N{neuron}")
                    + ":"
                    + json.dumps(
                        {
                            "label": f"label {i}",
                            "short_label": f"short {i}",
                            "output_function": "When this neuron fires ...",
                            "type": "lexical",
                            "interpretability": "high",
                            "input_label": f"input {i}",
                            "input_function": "It activates when ...",
                        }
                    )
                )
        if not jsonl:
            f.write("}")


def run(work: Path, sizes=(50_000, 500_000)) -> str:
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for fmt, jsonl in (("autointerp JSONL", True), ("enriched single-object JSON", False)):
        for n in sizes:
            path = work / (f"labels_{n}.jsonl" if jsonl else f"enriched_{n}.json")
            if not path.exists():
                write(path, n, jsonl)
            shutil.rmtree(work / "warehouse", ignore_errors=True)
            ours = measure(OURS.format(warehouse=str(work / "warehouse"), layers=LAYERS, npl=NPL, path=str(path)))
            base = measure(BASELINE.format(path=str(path), jsonl=jsonl))
            rows.append(
                [
                    fmt,
                    f"{n:,}",
                    f"{path.stat().st_size / 2**20:.0f}",
                    f"{ours.seconds:.1f}",
                    f"{ours.peak_rss_mb:.0f}",
                    f"{base.peak_rss_mb:.0f}",
                ]
            )
    return (
        "## Label ingest memory\n\nPeak RSS of `circuitlake ingest labels` (streaming: JSONL line by line, single-object "
        "JSON through ijson, rows written in 50k-row chunks) as the file grows 10x, next to the research way "
        "(json.load of the whole file, nothing written) on the same file in the same run.\n\n"
        + table(["format", "records", "file MB", "ingest s", "ingest peak RSS MB", "json.load peak RSS MB"], rows)
        + "\n"
    )
