"""Graph ingest: attribution graph files -> lake tables graphs, graph_nodes, graph_links.

Streaming and idempotent. Files are parsed in a process pool (all cores; in this process for a
corpus under IN_PROCESS_BYTES, which parses quicker than a pool starts) and landed in batches of
at most `batch_graphs` graphs / `batch_links` links, each batch one Delta commit per table. A file
whose content exceeds `stream_bytes` is streamed instead (ingest/graph_stream.py) in the main
process, as a batch of its own: its links are written chunk by chunk as they are read, so memory
stays bounded whatever the file's size; a rejected one has its written chunks deleted. A
graph's identity is the sha256 of its decompressed bytes: a graph already committed for the atlas
(also renamed or re-compressed) is skipped without parsing. Bad files are rejected whole with the
file and record, the good ones still land. Memory is bounded by one batch, whatever the corpus size.
"""

from __future__ import annotations

import os
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from functools import partial
from itertools import islice
from multiprocessing import get_context
from pathlib import Path

import ijson
import pyarrow as pa
from pydantic import ValidationError

from circuitlake import lake, locks, registry
from circuitlake.ingest import sources
from circuitlake.ingest.graph_rows import GraphError, Shape, read_graph, to_rows
from circuitlake.ingest.graph_stream import stream_rows
from circuitlake.lake import Batch, IngestReport, Reject, known_reject_keys
from circuitlake.progress import bar
from circuitlake.settings import Warehouse

DATA_TABLES = ["graph_links", "graph_nodes", "graphs"]  # written in this order, marker after
SUFFIXES = (".json", ".json.gz")
IN_PROCESS_BYTES = 16 * 2**20  # less graph JSON than this parses in one process (~40 MB/s): no worker pool
NOTED = {  # per-graph counts the ingest summary shows: graphs column -> what it counts
    "dangling_links": "links to ids that are no node (kept)",
    "ambiguous_links": "ambiguous links (an id two nodes hold: kept, never unit links)",
    "zero_weight_links": "zero-weight links (dropped)",
    "error_nodes": "error nodes",
}


def graph_key(graph_id: str) -> int:
    """The compact int64 key: the first 8 bytes of the sha256."""
    return int.from_bytes(bytes.fromhex(graph_id[:16]), "big", signed=True)


# Worker state, set once per process by _init.
_KNOWN: frozenset[str] = frozenset()
_SHAPE = Shape(0, 0)


def _init(known: frozenset[str], shape: Shape) -> None:
    global _KNOWN, _SHAPE
    _KNOWN, _SHAPE = known, shape


def _with_key(table: pa.Table, name: str, key: int) -> pa.Table:
    table = table.append_column("graph_key", pa.array([key] * table.num_rows, pa.int64()))
    schema = lake.row_schema(name)
    return table.select(schema.names).cast(schema)


def parse_file(path: Path):
    """Worker: ('skip', path, sha) | ('reject', Reject) | ('ok', path, sha, graph row, nodes, links)."""
    try:
        data = sources.read_bytes(path)
    except (OSError, EOFError, zlib.error) as e:
        return "reject", Reject(str(path), "file", f"cannot read: {e}", sources.sha256(path.read_bytes()) if path.exists() else "")
    sha = sources.sha256(data)
    if sha in _KNOWN:
        return "skip", path, sha
    try:
        graph = read_graph(data)
        rows = to_rows(graph, *_SHAPE)
    except ValidationError as e:
        return "reject", Reject.invalid(str(path), "", e, sha)
    except GraphError as e:
        return "reject", Reject(str(path), e.record, e.reason, sha)
    key = graph_key(sha)
    row = {**rows.graph, "graph_id": sha, "graph_key": key, "source_path": str(path)}
    return "ok", path, sha, row, _with_key(rows.nodes, "graph_nodes", key), _with_key(rows.links, "graph_links", key)


def bounded_map(pool: Executor, fn, items, window: int):
    """Like `pool.map` (results in order), but at most `window` files in flight: memory stays bounded
    even when landing batches is slower than parsing."""
    items = iter(items)
    pending = deque(pool.submit(fn, item) for item in islice(items, window))
    while pending:
        result = pending.popleft().result()
        nxt = next(items, None)
        if nxt is not None:
            pending.append(pool.submit(fn, nxt))
        yield result


class InProcess(Executor):
    """`parse_file` in this process, one file at a time: for corpora too small to repay starting workers."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


@contextmanager
def parsers(workers: int, known: frozenset[str], shape: Shape) -> Iterator[Executor]:
    """Worker processes for `parse_file`, started by a fork server: a fork of this process (its deltalake,
    progress-bar or JVM threads holding locks) could hang. Leaving the block early (an error, Ctrl-C)
    cancels the files not started and waits only for those being parsed. The server imports this module
    once, so each worker starts without importing it again. As with any start method other than fork, a
    script that ingests must guard its top level with `if __name__ == "__main__":`. One worker parses in
    this process instead."""
    if workers == 1:
        _init(known, shape)
        try:
            yield InProcess()
        finally:
            _init(frozenset(), Shape(0, 0))  # the known hashes are not kept after the ingest
        return
    context = get_context("forkserver")
    context.set_forkserver_preload([__name__])
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init, initargs=(known, shape))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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
    known = landed_graph_ids(wh, atlas.name)
    seen_rejects = known_reject_keys(wh, atlas.name)
    seen: set[str] = set(known)
    # a small corpus parses in this process: starting a pool (~1 s) costs more than parsing it (IN_PROCESS_BYTES)
    parallel = 1 if sum(sizes[f] for f in files) < IN_PROCESS_BYTES else len(files)
    workers = max(1, min(workers or os.cpu_count() or 1, parallel))
    batch = Batch(wh, atlas.name, "graphs")

    def flush() -> None:
        nonlocal batch
        counts = batch.commit(DATA_TABLES, seen_rejects)
        if counts:
            report.batches += 1
            report.count(counts)
        batch = Batch(wh, atlas.name, "graphs")

    def landed(path: Path, sha: str, row: dict) -> None:
        """Record a graph whose node and link rows are in the batch: its graphs row, input and hash."""
        batch.add("graphs", pa.Table.from_pylist([row], lake.row_schema("graphs")))
        batch.inputs.append(str(path))
        batch.hashes.append(sha)
        report.landed += 1
        report.count({what: row[k] for k, what in NOTED.items()} | {"graphs without units": int(row["neuron_count"] == 0)}, into="noted")

    def skipped(sha: str) -> bool:
        """True (and counted) when the graph is in the lake or was landed earlier in this run."""
        if sha in seen:
            report.skipped += 1
            batch.skipped += 1
            return True
        seen.add(sha)
        return False

    def stream(path: Path, advance: Callable[[], None]) -> None:
        """Land one huge graph as a batch of its own, written chunk by chunk as it is read."""
        nonlocal batch
        try:
            sha = sources.file_sha256(path)
        except (OSError, EOFError, zlib.error) as e:  # as parse_file says it
            report.reject(batch, Reject(str(path), "file", f"cannot read: {e}", sources.sha256(path.read_bytes())))
            return
        if skipped(sha):
            return
        flush()
        key, row = graph_key(sha), {}
        try:
            for table, rows in stream_rows(path, shape):
                if isinstance(rows, dict):
                    row = {**rows, "graph_id": sha, "graph_key": key, "source_path": str(path)}
                else:
                    batch.add(table, _with_key(rows, table, key))
                    batch.spill(table)
                    advance()
        except (GraphError, ijson.JSONError, OSError, EOFError, zlib.error) as e:
            for table in DATA_TABLES:  # the chunks of a rejected graph: written, never committed; gone now
                lake.delete(wh, table, f"atlas = '{atlas.name}' AND batch = '{batch.batch}'")
            batch = Batch(wh, atlas.name, "graphs")
            seen.discard(sha)
            record, reason = (e.record, e.reason) if isinstance(e, GraphError) else ("file", f"cannot read: {e}")
            report.reject(batch, Reject(str(path), record, reason, sha))
            flush()
            return
        landed(path, sha, row)
        flush()

    with bar(show_progress) as progress:
        task = progress.add_task(f"ingest graphs -> {atlas.name}", total=len(found))
        if files:
            with parsers(workers, known, shape) as pool:
                for result in bounded_map(pool, parse_file, files, window=8 * workers):
                    progress.advance(task)
                    kind = result[0]
                    if kind == "reject":
                        report.reject(batch, result[1])
                        continue
                    _, path, sha = result[:3]
                    if skipped(sha):
                        continue
                    _, _, _, row, nodes, links = result
                    batch.add("graph_nodes", nodes)
                    batch.add("graph_links", links)
                    landed(path, sha, row)
                    if len(batch.hashes) >= batch_graphs or batch.rows("graph_links") >= batch_links:
                        flush()
        flush()
        for path in huge:
            chunks = progress.add_task(f"  {path.name} (streamed, link chunks)", total=None)
            stream(path, partial(progress.advance, chunks))
            progress.advance(task)
        flush()
    return report
