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
from pathlib import Path
from typing import cast

import ijson
import pyarrow as pa
from pydantic import ValidationError

from circuitlake import lake, locks, registry
from circuitlake.errors import UserError
from circuitlake.formats import label_files
from circuitlake.formats.label_files import LabelError, LabelFileFormat, LabelRecord
from circuitlake.ingest import sources
from circuitlake.lake import Batch, IngestReport, Reject, content_hash, known_reject_keys
from circuitlake.progress import bar
from circuitlake.settings import Warehouse

SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


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


# how each layout is read: yield (record, raw) where raw is bytes (a JSONL line) or a parsed JSON value
READERS: dict[str, Callable] = {
    "lines": _lines,
    "object": _kv(""),
    "object:neurons": _kv("neurons"),
    "array:profiles": _profiles,
    "array-or-lines": _items_or_lines,
}


def detect_format(path: Path, known: dict[str, LabelFileFormat]) -> str:
    """Tell the format from the first top-level keys (streaming; a huge first value is skipped, not loaded)."""
    raw, stream = sources.open_stream(path)
    try:
        for prefix, event, value in ijson.parse(stream, multiple_values=True):
            if event == "map_key":
                for fmt in known.values():
                    if fmt.recognises(prefix, value):
                        return fmt.name
    except ijson.JSONError:
        pass
    finally:
        raw.close()
    raise UserError(f"{path}: cannot tell the label format; pass --format ({', '.join(known)})")


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
    known = label_files.formats()
    fmt = detect_format(path, known) if fmt == "auto" else fmt
    if fmt not in known:
        raise UserError(f"--format {fmt!r}: one of auto, {', '.join(known)}")
    report = IngestReport()
    sha = sources.file_sha256(path)
    if latest_source_hash(wh, atlas.name, source) == content_hash([sha]):
        report.skipped = 1
        return report

    batch = Batch(wh, atlas.name, "labels", source=source, inputs=[str(path)], hashes=[sha])
    extra = {"source": source, "source_file": str(path)}
    schema = lake.row_schema("labels")
    seen = {p: bytearray(atlas.num_layers * atlas.neurons_per_layer) for p in registry.LABEL_PASSES}
    form = known[fmt]
    read = READERS[form.records]
    pending: list[dict] = []
    records = landed = 0
    raw, stream = sources.open_stream(path)
    with raw, bar(show_progress) as progress:
        task = progress.add_task(f"ingest labels {source} -> {atlas.name}", total=path.stat().st_size)
        try:
            for record, value in read(stream):
                records += 1
                try:
                    obj = form.model.model_validate_json(value) if isinstance(value, bytes) else form.model.model_validate(value)
                    rows = cast(LabelRecord, obj).label_rows(record, atlas)
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
