"""Label ingest: every label file shape in use -> lake table `labels`, one row per (neuron, source, pass).

Streaming: JSONL line by line, single-object JSON files through ijson (never json.load), rows
written in chunks. A file is one batch of its `source` (default: the file's stem), the unit of
replacement: re-ingesting the same bytes is a no-op, and a newer file replaces the source's labels
atomically (the marker commit switches readers to the new batch; older rows are then deleted and
stay reachable by Delta time travel). Keys in every spelling ("L17/N12426", "L17/12426",
"17_12426", feature_id, Neuronpedia's source id + index) normalise to (layer, neuron); a key outside
the atlas shape, a feature_id that disagrees with its layer/neuron, a duplicate or an unparseable
record is a reject. A format may hold several records per unit (Neuronpedia: several explanations of
one feature): the first is the unit's label, the others land under their own pass as provenance.
A file whose every record is rejected changes nothing but `rejects` (its source keeps its labels,
and the same file with the right --format is not "nothing to do"); a file with no record of its
format at all is an error.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import ijson
import pyarrow as pa
from pydantic import BaseModel, ValidationError

from circuitlake import lake, locks, registry
from circuitlake.errors import UserError
from circuitlake.formats.labels_activation import NeuronProfile
from circuitlake.formats.labels_autointerp import AutointerpLine
from circuitlake.formats.labels_enriched import EnrichedLabel
from circuitlake.formats.labels_function_db import FunctionDbNeuron
from circuitlake.formats.labels_neuronpedia import SNIFF_KEYS, NeuronpediaExplanation
from circuitlake.ingest import sources
from circuitlake.lake import Batch, IngestReport, Reject, content_hash, known_reject_keys
from circuitlake.progress import bar
from circuitlake.registry import AtlasRecord
from circuitlake.settings import Warehouse

FORMATS = ("autointerp-jsonl", "enriched", "function-db", "activation-descriptions", "neuronpedia")
SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class LabelError(ValueError):
    """A record that breaks a rule; the message is the reason."""


def neuron_of(key: str | int, atlas: AtlasRecord) -> tuple[int, int]:
    """(layer, neuron) of a key in any spelling in use, checked against the atlas shape."""
    try:
        return atlas.neuron_of(key)
    except ValueError as e:
        raise LabelError(str(e)) from None


def _row(layer: int, neuron: int, pass_: str, **values) -> dict:
    return {"layer": layer, "neuron": neuron, "pass": pass_, **values}


# --- one converter per format: (record key, validated object, atlas) -> rows ---


def _autointerp(_key, line: AutointerpLine, atlas: AtlasRecord) -> list[dict]:
    meta = line.feature_metadata
    if line.feature_id is None and (meta.layer is None or meta.neuron is None):
        raise LabelError("no feature_id and no feature_metadata.layer/neuron")
    if line.feature_id is not None:
        layer, neuron = neuron_of(line.feature_id, atlas)
        if meta.layer is not None and meta.neuron is not None and (meta.layer, meta.neuron) != (layer, neuron):
            raise LabelError(f"feature_id {line.feature_id} is L{layer}/N{neuron} but feature_metadata says L{meta.layer}/N{meta.neuron}")
    else:
        layer, neuron = neuron_of(f"{meta.layer}_{meta.neuron}", atlas)
    first = line.labels[0] if line.labels else None  # a line without labels: a labeling error upstream, kept unlabeled
    return [
        _row(
            layer,
            neuron,
            "autointerp",
            label=first.label if first else None,
            description=first.metadata.parsed_response.description if first else None,
            max_activation=meta.max_activation,
            num_exemplars=meta.num_exemplars,
        )
    ]


def _enriched(key, e: EnrichedLabel, atlas: AtlasRecord) -> list[dict]:
    layer, neuron = neuron_of(key, atlas)
    rows = [
        _row(
            layer,
            neuron,
            "output",
            label=e.label,
            short_label=e.short_label,
            description=e.output_function,
            type=e.type,
            interpretability=e.interpretability,
            confidence=e.confidence,
        ),
        _row(
            layer,
            neuron,
            "input",
            label=e.input_label,
            description=e.input_function,
            type=e.input_type,
            interpretability=e.input_interpretability,
            confidence=e.input_confidence,
        ),
    ]
    if e.autointerp_label is not None:  # kept, but not an atlas label by default (registry.LABEL_PASSES)
        rows.append(_row(layer, neuron, "autointerp_original", label=e.autointerp_label))
    return rows


def _function_db(key, n: FunctionDbNeuron, atlas: AtlasRecord) -> list[dict]:
    layer, neuron = neuron_of(key, atlas)
    if n.layer is not None and n.neuron_idx is not None and (n.layer, n.neuron_idx) != (layer, neuron):
        raise LabelError(f"key {key} disagrees with layer {n.layer} / neuron_idx {n.neuron_idx}")
    return [
        _row(
            layer,
            neuron,
            "output",
            label=n.function_label,
            description=n.function_description,
            type=n.function_type,
            interpretability=n.interpretability,
            confidence=n.confidence,
            output_norm=n.output_norm,
        ),
        _row(
            layer,
            neuron,
            "input",
            label=n.input_label,
            description=n.input_description,
            type=n.input_type,
            interpretability=n.input_interpretability,
            confidence=n.input_confidence,
        ),
    ]


def _neuronpedia(_key, e: NeuronpediaExplanation, atlas: AtlasRecord) -> list[dict]:
    layer, neuron = neuron_of(f"{e.layer_number}_{e.index}", atlas)
    return [
        _row(
            layer,
            neuron,
            "autointerp",
            label=e.description,
            type=e.typeName,  # provenance: how the explanation was made
            labeler_model=e.explanationModelName,
        )
    ]


def _activation(key, p: NeuronProfile, atlas: AtlasRecord) -> list[dict]:
    if p.layer is not None and p.neuron is not None:
        layer, neuron = neuron_of(f"{p.layer}_{p.neuron}", atlas)
        if p.neuron_id is not None and neuron_of(p.neuron_id, atlas) != (layer, neuron):
            raise LabelError(f"neuron_id {p.neuron_id} disagrees with layer {p.layer} / neuron {p.neuron}")
    elif p.neuron_id is not None:
        layer, neuron = neuron_of(p.neuron_id, atlas)
    else:
        raise LabelError("profile without layer/neuron or neuron_id")
    norm = p.output_projection.output_norm
    return [
        _row(layer, neuron, "activation_pos", label=p.transluce_label_positive, output_norm=norm),
        _row(layer, neuron, "activation_neg", label=p.transluce_label_negative),
    ]


# --- streaming readers: yield (record, raw) where raw is bytes (a JSONL line) or a parsed JSON value ---


def _lines(f) -> Iterator[tuple[str, bytes]]:
    for number, line in enumerate(f, 1):
        if line.strip():
            yield f"line {number}", line


def _kv(prefix: str) -> Callable:
    def read(f):
        yield from ijson.kvitems(f, prefix, use_float=True)

    return read


def _profiles(f):
    for i, value in enumerate(ijson.items(f, "profiles.item", use_float=True)):
        yield f"profiles[{i}]", value


def _items_or_lines(f):
    """A JSON array's items ("[i]"), or JSONL lines: whichever the file holds."""
    head = f.peek(64) if hasattr(f, "peek") else b""
    if head.lstrip()[:1] == b"[":
        for i, value in enumerate(ijson.items(f, "item", use_float=True)):
            yield f"[{i}]", value
    else:
        yield from _lines(f)


@dataclass(frozen=True)
class LabelFormat:
    """How one label file shape is read: records from the stream, each validated by `model`, then
    converted to label rows. `repeats`: the pass a unit's further records in one file land as
    (several explanations of one feature); without it a unit's second record is a duplicate."""

    reader: Callable
    model: type[BaseModel]
    convert: Callable
    repeats: str | None = None


READERS: dict[str, LabelFormat] = {
    "autointerp-jsonl": LabelFormat(_lines, AutointerpLine, _autointerp),
    "enriched": LabelFormat(_kv(""), EnrichedLabel, _enriched),
    "function-db": LabelFormat(_kv("neurons"), FunctionDbNeuron, _function_db),
    "activation-descriptions": LabelFormat(_profiles, NeuronProfile, _activation),
    # the first explanation of a feature in file order is its autointerp label; the others stay as provenance
    "neuronpedia": LabelFormat(_items_or_lines, NeuronpediaExplanation, _neuronpedia, repeats="autointerp_alternative"),
}


def detect_format(path: Path) -> str:
    """Tell the shape from the first top-level keys (streaming; a huge first value is skipped, not loaded)."""
    raw, stream = sources.open_stream(path)
    try:
        for prefix, event, value in ijson.parse(stream, multiple_values=True):
            if event != "map_key" or prefix not in ("", "item"):
                continue
            if value in SNIFF_KEYS:  # an explanation export: an array of them, or JSONL
                return "neuronpedia"
            if prefix == "item":
                continue
            if value in ("feature_id", "labels", "feature_metadata"):
                return "autointerp-jsonl"
            if value == "neurons":
                return "function-db"
            if value == "profiles":
                return "activation-descriptions"
            if registry.NEURON_KEY.match(value):
                return "enriched"
    except ijson.JSONError:
        pass
    finally:
        raw.close()
    raise UserError(f"{path}: cannot tell the label format; pass --format ({', '.join(FORMATS)})")


def latest_source_hash(wh: Warehouse, atlas: str, source: str) -> str | None:
    return lake.latest_hash(wh, atlas, "labels", source)


@locks.writes_atlas("ingest labels")
def ingest_labels(
    wh: Warehouse,
    atlas_name: str,
    path: str | Path,
    *,
    source: str | None = None,
    fmt: str = "auto",
    labeler_model: str | None = None,
    chunk_rows: int = 50_000,
    show_progress: bool = True,
) -> IngestReport:
    """Land one label file as the current labels of its source. Idempotent per file content."""
    atlas = registry.get(wh, atlas_name)
    path = Path(path).resolve()
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    source = source or path.name.split(".")[0]
    if not SOURCE_NAME.match(source):
        raise UserError(f"source name {source!r}: use letters, digits, '.', '_' or '-' (--source NAME)")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in READERS:
        raise UserError(f"--format {fmt!r}: one of auto, {', '.join(FORMATS)}")
    report = IngestReport()
    sha = sources.file_sha256(path)
    if latest_source_hash(wh, atlas.name, source) == content_hash([sha]):
        report.skipped = 1
        return report

    batch = Batch(wh, atlas.name, "labels", source=source, inputs=[str(path)], hashes=[sha])
    extra = {"source": source, "source_file": str(path)}
    schema = lake.row_schema("labels")
    seen = {p: bytearray(atlas.num_layers * atlas.neurons_per_layer) for p in registry.LABEL_PASSES}
    form = READERS[fmt]
    pending: list[dict] = []
    records = landed = 0
    raw, stream = sources.open_stream(path)
    with raw, bar(show_progress) as progress:
        task = progress.add_task(f"ingest labels {source} -> {atlas.name}", total=path.stat().st_size)
        try:
            for record, value in form.reader(stream):
                records += 1
                try:
                    obj = form.model.model_validate_json(value) if isinstance(value, bytes) else form.model.model_validate(value)
                    rows = form.convert(record, obj, atlas)
                except ValidationError as e:
                    report.reject(batch, Reject.invalid(str(path), record, e, sha))
                    continue
                except LabelError as e:
                    report.reject(batch, Reject(str(path), record, str(e), sha))
                    continue
                first = rows[0]
                slot = first["layer"] * atlas.neurons_per_layer + first["neuron"]
                if seen[first["pass"]][slot] and form.repeats:  # a further record of the unit: kept under its own pass
                    rows = [{**r, "pass": form.repeats} for r in rows]
                elif seen[first["pass"]][slot]:
                    report.reject(
                        batch,
                        Reject(str(path), record, f"duplicate: L{first['layer']}/N{first['neuron']} already labeled in this file", sha),
                    )
                    continue
                seen[first["pass"]][slot] = 1
                # --labeler-model names the labeler where the file does not (Neuronpedia's records do)
                pending.extend({**r, **extra, "labeler_model": r.get("labeler_model") or labeler_model, "record": record} for r in rows)
                landed += len(rows)
                if len(pending) >= chunk_rows:
                    batch.add("labels", pa.Table.from_pylist(pending, schema))
                    batch.spill("labels")
                    pending.clear()
                    progress.update(task, completed=raw.tell())
        except (ijson.JSONError, EOFError, OSError, zlib.error) as e:
            report.reject(batch, Reject(str(path), f"byte {raw.tell()}", f"unreadable from here on ({e}); records before it landed", sha))
        progress.update(task, completed=path.stat().st_size)
    if not records and not report.rejected:
        raise UserError(f"{path}: no {fmt} records in it: a file of another shape? (leave --format out to detect it)")
    if pending:
        batch.add("labels", pa.Table.from_pylist(pending, schema))
    if not landed:  # every record rejected: a batch of rejects only, so the source keeps its labels (and a retry runs)
        batch.hashes = []
    counts = batch.commit(["labels"], known_reject_keys(wh, atlas.name))
    report.count(counts)
    if landed:
        # the marker made the new batch current; drop the source's older rows (Delta time travel keeps them)
        lake.delete(wh, "labels", f"atlas = '{atlas.name}' AND source = '{source}' AND batch <> '{batch.batch}'")
        report.landed, report.batches = 1, 1
    return report
