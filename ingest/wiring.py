"""Wiring ingest: wiring-cache layer files -> lake tables `wiring`, `projections` (and `neuron_weights`).

One layer file is one batch (streamed neuron by neuron through ijson); a layer whose content is
already committed for the atlas is skipped, so an interrupted run resumes where it stopped. The
computed path (ingest/wiring_compute.py) lands its layers through `land_layer` too, so both give the same rows.
Missing optional fields are nulls; a malformed entry is a reject naming file and neuron.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from pathlib import Path

import ijson
import pyarrow as pa
from pydantic import ValidationError

from circuitlake import lake, locks, registry
from circuitlake.errors import UserError
from circuitlake.formats.wiring_cache import NeuronWiring
from circuitlake.ingest import sources
from circuitlake.lake import Batch, IngestReport, Reject, content_hash, known_reject_keys
from circuitlake.progress import bar
from circuitlake.registry import AtlasRecord
from circuitlake.settings import Warehouse

TABLES = ["wiring", "projections", "neuron_weights"]
LAYER_FILE = re.compile(r"^layer_(\d+)\.json(?:\.gz)?$")


def neuron_rows(layer: int, neuron: int, entry: NeuronWiring) -> tuple[list[dict], list[dict]]:
    """Rows of `wiring` and `projections` for one neuron's cache entry."""
    wiring = [
        {
            "layer": layer,
            "neuron": neuron,
            "direction": direction,
            "polarity": polarity,
            "rank": rank,
            "other_layer": c.layer,
            "other_neuron": c.neuron,
            "c_up": c.c_up,
            "c_gate": c.c_gate,
            "effective_strength": c.effective_strength,
            "predicted_polarity": c.predicted_polarity,
        }
        for direction in ("upstream", "downstream")
        for polarity in ("excitatory", "inhibitory")
        for rank, c in enumerate(getattr(getattr(entry, direction), polarity), 1)
    ]
    projections = [
        {"layer": layer, "neuron": neuron, "kind": kind, "rank": rank, "token_id": t.token_id, "token": t.token, "weight": t.weight}
        for kind in ("promotes", "suppresses")
        for rank, t in enumerate(getattr(entry.projections, kind), 1)
    ]
    return wiring, projections


def committed_layer_hashes(wh: Warehouse, atlas: str) -> set[str]:
    """Content hashes of the wiring layers already landed (a layer batch's hash is its layer's)."""
    return lake.landed_hashes(wh, atlas, "wiring")


def land_layer(
    wh: Warehouse,
    atlas: AtlasRecord,
    source: str,
    layer: int,
    layer_hash: str,
    inputs: list[str],
    entries: Iterable[tuple[str, tuple[int, int], NeuronWiring | None, str | None]],
    report: IngestReport,
    norms: dict[int, float] | None = None,
) -> dict[str, int]:
    """Land one layer as one batch. `entries` yields (record, (layer, neuron), entry, error): an entry when
    the error is None, else a reject."""
    batch = Batch(wh, atlas.name, "wiring", source=source, inputs=inputs, hashes=[layer_hash])
    wiring, projections = [], []
    for record, neuron, entry, error in entries:
        if error is None and not atlas.contains(neuron[0], neuron[1]):
            error = f"neuron L{neuron[0]}/N{neuron[1]} is outside the atlas shape {atlas.num_layers} x {atlas.neurons_per_layer}"
        if error is None:
            assert entry is not None
            bad = [
                c for d in (entry.upstream, entry.downstream) for c in d.excitatory + d.inhibitory if not atlas.contains(c.layer, c.neuron)
            ]
            if bad:
                error = f"connection to L{bad[0].layer}/N{bad[0].neuron} is outside the atlas shape"
        if error is not None:
            report.reject(batch, Reject(inputs[0], record, error, layer_hash))
            continue
        assert entry is not None
        w, p = neuron_rows(*neuron, entry)
        wiring += w
        projections += p
    extra = {"source": source}
    batch.add("wiring", pa.Table.from_pylist([{**r, **extra} for r in wiring], lake.row_schema("wiring")))
    batch.add("projections", pa.Table.from_pylist([{**r, **extra} for r in projections], lake.row_schema("projections")))
    if norms:
        batch.add(
            "neuron_weights",
            pa.Table.from_pylist(
                [{"source": source, "layer": layer, "neuron": n, "output_norm": v} for n, v in norms.items()],
                lake.row_schema("neuron_weights"),
            ),
        )
    counts = batch.commit(TABLES, known_reject_keys(wh, atlas.name))
    report.landed += 1
    report.batches += 1
    report.count(counts)
    return counts


def _entries(path: Path, layer: int):
    raw, stream = sources.open_stream(path)
    with raw:
        try:
            for key, value in ijson.kvitems(stream, "", use_float=True):
                if not key.isdigit():
                    yield key, (layer, -1), None, f"key {key!r} is not a neuron index"
                    continue
                try:
                    yield key, (layer, int(key)), NeuronWiring.model_validate(value), None
                except ValidationError as e:
                    first = e.errors()[0]
                    yield key, (layer, int(key)), None, f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
        except (ijson.JSONError, EOFError, OSError, zlib.error) as e:
            yield f"byte {raw.tell()}", (layer, -1), None, f"unreadable from here on ({e}); entries before it landed"


@locks.writes_atlas("ingest wiring")
def ingest_wiring(
    wh: Warehouse, atlas_name: str, folder: str | Path, *, source: str | None = None, show_progress: bool = True
) -> IngestReport:
    """Land every `layer_{i}.json` of a wiring cache folder, one layer at a time. Idempotent per layer file."""
    atlas = registry.get(wh, atlas_name)
    folder = Path(folder).resolve()
    files = sorted((int(m[1]), f) for f in folder.iterdir() if (m := LAYER_FILE.match(f.name))) if folder.is_dir() else []
    if not files:
        raise UserError(f"{folder}: no layer_<i>.json files (a wiring cache folder)")
    source = source or f"cache:{folder.name}"
    done = committed_layer_hashes(wh, atlas.name)
    report = IngestReport()
    with bar(show_progress) as progress:
        task = progress.add_task(f"ingest wiring -> {atlas.name}", total=len(files))
        for layer, path in files:
            sha = sources.file_sha256(path)
            if content_hash([sha]) in done:
                report.skipped += 1
            else:
                land_layer(wh, atlas, source, layer, sha, [str(path)], _entries(path, layer), report)
            progress.advance(task)
    return report
