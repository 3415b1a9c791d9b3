"""Graph ingest: attribution graph files -> lake tables graphs, graph_nodes, graph_links.

Streaming and idempotent. The main process reads each file and hashes its decompressed bytes; a
graph's identity is that sha256, so a graph already committed for the atlas (also renamed or
re-compressed) or met earlier in the run is skipped without parsing. Landers parse the rest and land
them in batches of at most `batch_graphs` graphs / `batch_links` links, each batch one Delta commit per
table (ingest/graph_landers.py): a worker process per core, each committing its own batches (in this
process for a corpus under IN_PROCESS_BYTES, which lands quicker than workers start). A file whose
content exceeds `stream_bytes` is streamed instead (ingest/graph_stream.py) in the main process, as a
batch of its own: its links are written chunk by chunk as they are read, so memory stays bounded
whatever the file's size; a rejected one has its written chunks deleted. Bad files are rejected whole
with the file and record, the good ones still land. Memory is bounded by a few files in flight and one
batch per lander, whatever the corpus size.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

import ijson

from circuitlake import lake, locks, registry
from circuitlake.ingest import sources
from circuitlake.ingest.graph_landers import CHUNK_GRAPHS, DATA_TABLES, Event, Lander, Settings, graph_key, landers, with_key
from circuitlake.ingest.graph_rows import GraphError, Shape
from circuitlake.ingest.graph_stream import stream_rows
from circuitlake.lake import Batch, IngestReport, Reject, known_reject_keys
from circuitlake.progress import bar
from circuitlake.settings import Warehouse

SUFFIXES = (".json", ".json.gz")
IN_PROCESS_BYTES = 16 * 2**20  # less graph JSON than this lands in one process (~40 MB/s): no workers
IN_FLIGHT_BYTES = 256 * 2**20  # read but not yet landed (at least one file): bounds the memory between the main process and its workers
IN_FLIGHT_PER_WORKER = 2 * CHUNK_GRAPHS  # files queued per worker: enough that none waits for the main process, nor settles a small chunk


def landed_graph_ids(wh: Warehouse, atlas: str) -> frozenset[str]:
    """Graph ids in committed batches of the atlas."""
    committed = lake.committed_batches(wh, atlas, "graphs")
    if not committed:
        return frozenset()
    t = lake.read(wh, "graphs", ["graph_id", "batch"], [("atlas", "=", atlas)])
    return frozenset(g for g, b in zip(t["graph_id"].to_pylist(), t["batch"].to_pylist(), strict=False) if b in committed)


@locks.writes_atlas("ingest graphs")
def ingest_graphs(
    wh: Warehouse,
    atlas_name: str,
    paths: list[str],
    *,
    workers: int | None = None,
    batch_graphs: int = 256,
    batch_links: int = 1_000_000,
    stream_bytes: int = 64 * 2**20,
    show_progress: bool = True,
) -> IngestReport:
    """Land the graphs found under `paths` in the atlas. Re-running with the same files adds nothing."""
    atlas = registry.get(wh, atlas_name)
    shape = Shape(atlas.num_layers, atlas.neurons_per_layer, atlas.unit, atlas.name)
    found = sources.expand(paths, SUFFIXES)
    report = IngestReport()
    if not found:
        return report
    sizes = {f: sources.content_size(f) for f in found}
    huge = [f for f in found if sizes[f] > stream_bytes]
    files = [f for f in found if sizes[f] <= stream_bytes]
    seen = set(landed_graph_ids(wh, atlas.name))  # graphs in the lake, then those handed to a lander in this run
    # a small corpus lands in this process: starting workers (~1 s) costs more than parsing it (IN_PROCESS_BYTES)
    parallel = 1 if sum(sizes[f] for f in files) < IN_PROCESS_BYTES else len(files)
    workers = max(1, min(workers or os.cpu_count() or 1, parallel))
    settings = Settings(wh, atlas.name, shape, frozenset(known_reject_keys(wh, atlas.name)), batch_graphs, batch_links)
    local = Lander(settings)  # the main process's: rejects of unreadable files, streamed graphs, small corpora
    in_flight: dict[str, tuple[int, list[Path]]] = {}  # content hash handed to a lander -> (bytes, later files with it)
    rejected: dict[str, Reject] = {}  # content hash -> its reject in this run (its row recorded once, by one lander)

    def flush() -> None:
        tally(local.flush())

    def tally(events: list[Event]) -> None:
        """Bring what landers did into the report; settle the files that waited for a graph's verdict."""
        for event in events:
            if event[0] == "committed":
                report.batches += 1
                report.count(event[1])
                continue
            kind, sha, what = event
            progress.advance(task)
            _, waiting = in_flight.pop(sha, (0, []))
            if kind == "landed":
                report.landed += 1
                report.count(what, into="noted")
                for _ in waiting:
                    skip()
            else:
                report.announce(what)
                rejected[sha] = what
                for path in waiting:
                    same_verdict(path, what)

    def same_verdict(path: Path, reject: Reject) -> None:
        """A file whose content was rejected in this run: the same reject line (its row is recorded once)."""
        report.announce(Reject(str(path), reject.record, reject.reason, reject.content_hash))
        progress.advance(task)

    def unreadable(path: Path, error: Exception) -> None:
        """Reject a file that cannot be read or decompressed (its raw bytes' hash; none when it is gone)."""
        raw = sources.sha256(path.read_bytes()) if path.exists() else ""
        tally([local.reject(Reject(str(path), "file", f"cannot read: {error}", raw))])

    def skip() -> None:
        report.skipped += 1
        local.batch.skipped += 1
        progress.advance(task)

    def read(path: Path) -> tuple[str, bytes] | None:
        """(sha, content) of a file to land; None when it is unreadable (rejected), known, rejected or waiting."""
        try:
            data = sources.read_bytes(path)
        except (OSError, EOFError, zlib.error) as e:
            unreadable(path, e)
            return None
        sha = sources.sha256(data)
        if sha in in_flight:
            in_flight[sha][1].append(path)
        elif sha in rejected:
            same_verdict(path, rejected[sha])
        elif sha in seen:
            skip()
        else:
            return sha, data
        return None

    def stream(path: Path, advance: Callable[[], None]) -> None:
        """Land one huge graph as a batch of its own, written chunk by chunk as it is read."""
        try:
            sha = sources.file_sha256(path)
        except (OSError, EOFError, zlib.error) as e:
            unreadable(path, e)
            return
        if sha in rejected:
            same_verdict(path, rejected[sha])
            return
        if sha in seen:
            skip()
            return
        flush()
        batch, key, row = local.batch, graph_key(sha), {}
        try:
            for table, rows in stream_rows(path, shape):
                if isinstance(rows, dict):
                    row = {**rows, "graph_id": sha, "graph_key": key, "source_path": str(path)}
                else:
                    batch.add(table, with_key(rows, table, key))
                    batch.spill(table)
                    advance()
        except (GraphError, ijson.JSONError, OSError, EOFError, zlib.error) as e:
            for table in DATA_TABLES:  # the chunks of a rejected graph: written, never committed; gone now
                lake.delete(wh, table, f"atlas = '{atlas.name}' AND batch = '{batch.batch}'")
            local.batch = Batch(wh, atlas.name, "graphs")
            record, reason = (e.record, e.reason) if isinstance(e, GraphError) else ("file", f"cannot read: {e}")
            tally([local.reject(Reject(str(path), record, reason, sha))])
            flush()
            return
        seen.add(sha)
        tally(local.landed([(str(path), sha, row)]))
        flush()

    with bar(show_progress) as progress:
        task = progress.add_task(f"ingest graphs -> {atlas.name}", total=len(found))
        if files:
            with landers(workers, local) as pool:
                for path in files:
                    content = read(path)
                    if content is None:
                        continue
                    sha, data = content
                    seen.add(sha)
                    in_flight[sha] = (len(data), [])
                    pool.submit(str(path), sha, data)
                    while len(in_flight) > IN_FLIGHT_PER_WORKER * workers or (
                        len(in_flight) > 1 and sum(size for size, _ in in_flight.values()) > IN_FLIGHT_BYTES
                    ):
                        tally(pool.results(wait=True))
                    tally(pool.results(wait=False))
                while in_flight:
                    tally(pool.results(wait=True))
                tally(pool.finish())
        flush()
        for path in huge:
            chunks = progress.add_task(f"  {path.name} (streamed, link chunks)", total=None)
            stream(path, partial(progress.advance, chunks))
        flush()
    return report
