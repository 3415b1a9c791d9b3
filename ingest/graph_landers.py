"""Landers: parse graph files and land them in batches of their own, in this process or in worker processes.

A lander owns its batches (one Delta commit per table, marker last: lake/commit.py), so worker processes
parse and write the lake side by side while the main process only reads, hashes and reports; the Delta
log orders their commits. A lander parses each graph as it comes and makes the rows of up to
`CHUNK_GRAPHS` parsed graphs at once (`settle`: each array operation then serves many graphs; a chunk
where one graph breaks a rule is made again graph by graph, so every reject is that graph's own). A
lander never sees a graph twice: the main process hands each content hash to one lander. What a lander
did comes back as a list of events: ("landed", sha, noted counts) | ("rejected", sha, Reject) |
("committed", rows written per table); a worker also says ("done",) when it stopped, or ("failed",
error) when it could not go on.
"""

from __future__ import annotations

import os
import pickle
import queue
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context

import pyarrow as pa
from pydantic import ValidationError

from circuitlake import lake
from circuitlake.ingest.graph_rows import Graph, GraphError, ManyRows, Shape, many_rows, read_graph
from circuitlake.lake import Batch, Reject
from circuitlake.settings import Warehouse

DATA_TABLES = ["graph_links", "graph_nodes", "graphs"]  # written in this order, marker after
NOTED = {  # per-graph counts the ingest summary shows: graphs column -> what it counts
    "dangling_links": "links to ids that are no node (kept)",
    "ambiguous_links": "ambiguous links (an id two nodes hold: kept, never unit links)",
    "zero_weight_links": "zero-weight links (dropped)",
    "error_nodes": "error nodes",
}
Event = tuple
CHUNK_GRAPHS = 32  # parsed graphs whose rows are made together (more gains little: 2.2 ms per graph at 32, 1.9 at 64)
CHUNK_LINKS = 500_000  # ... or fewer when they hold this many links
# a worker waits this long for the next file before it makes the rows of what it parsed: the main process
# hands files on in bursts, and settling at every empty moment made chunks of ~6 graphs, not 32 (10%
# slower on 2 cores); the main process waits for the verdicts only when many files are in flight or at the end
IDLE_SECONDS = 0.05


def graph_key(graph_id: str) -> int:
    """The compact int64 key: the first 8 bytes of the sha256."""
    return int.from_bytes(bytes.fromhex(graph_id[:16]), "big", signed=True)


def with_key(table: pa.Table, name: str, key: int | list[int]) -> pa.Table:
    """Rows with their `graph_key` (one key, or the key of each graph by the rows' `graph` column), in the
    lake table's column order and types."""
    keys = pa.repeat(pa.scalar(key, pa.int64()), table.num_rows) if isinstance(key, int) else pa.array(key, pa.int64()).take(table["graph"])
    table = table.append_column("graph_key", keys)
    schema = lake.row_schema(name)
    return table.select(schema.names).cast(schema)


@dataclass(frozen=True)
class Settings:
    """What every lander of one ingest run shares (picklable: sent to each worker once)."""

    wh: Warehouse
    atlas: str
    shape: Shape
    seen_rejects: frozenset[str]  # reject keys already in the lake: a re-run records none again
    batch_graphs: int
    batch_links: int


class Lander:
    """Lands graphs in batches of at most `batch_graphs` graphs / `batch_links` links."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.seen_rejects = set(settings.seen_rejects)
        self.batch = Batch(settings.wh, settings.atlas, "graphs")
        self.pending: list[tuple[str, str, Graph]] = []  # parsed graphs whose rows are not made yet
        self.pending_links = 0

    def land(self, path: str, sha: str, data: bytes) -> list[Event]:
        """Parse one graph file's content; its rows are made with those of the graphs parsed before it
        (`settle`) once they are a chunk, or fill the batch (committed when full)."""
        try:
            graph = read_graph(data)
        except ValidationError as e:
            return [self.reject(Reject.invalid(path, "", e, sha))]
        self.pending.append((path, sha, graph))
        self.pending_links += graph.links.num_rows
        settings, batch = self.settings, self.batch
        if (
            len(self.pending) >= CHUNK_GRAPHS
            or self.pending_links >= CHUNK_LINKS
            or len(batch.hashes) + len(self.pending) >= settings.batch_graphs
            or batch.rows("graph_links") + self.pending_links >= settings.batch_links
        ):
            return self.settle()
        return []

    def settle(self) -> list[Event]:
        """Make the rows of the parsed graphs and add them to the batch (committed when full)."""
        pending, self.pending, self.pending_links = self.pending, [], 0
        if not pending:
            return []
        try:
            events = self._add(pending, many_rows([graph for _, _, graph in pending], self.settings.shape))
        except GraphError:  # one of them broke a rule: each alone, so the others land and the reject names its record
            events = []
            for path, sha, graph in pending:
                try:
                    events += self._add([(path, sha, graph)], many_rows([graph], self.settings.shape))
                except GraphError as e:
                    events.append(self.reject(Reject(path, e.record, e.reason, sha)))
        if len(self.batch.hashes) >= self.settings.batch_graphs or self.batch.rows("graph_links") >= self.settings.batch_links:
            events += self.flush()
        return events

    def _add(self, graphs: list[tuple[str, str, Graph]], rows: ManyRows) -> list[Event]:
        """Add the rows of `graphs` to the batch."""
        keys = [graph_key(sha) for _, sha, _ in graphs]
        self.batch.add("graph_nodes", with_key(rows.nodes, "graph_nodes", keys))
        self.batch.add("graph_links", with_key(rows.links, "graph_links", keys))
        rows_with_ids = [
            (path, sha, {**row, "graph_id": sha, "graph_key": key, "source_path": path})
            for (path, sha, _), row, key in zip(graphs, rows.graphs, keys, strict=True)
        ]
        return self.landed(rows_with_ids)

    def landed(self, graphs: list[tuple[str, str, dict]]) -> list[Event]:
        """Record graphs (path, sha, graphs row) whose node and link rows are in the batch: their graphs
        rows, inputs and hashes."""
        self.batch.add("graphs", pa.Table.from_pylist([row for _, _, row in graphs], lake.row_schema("graphs")))
        events: list[Event] = []
        for path, sha, row in graphs:
            self.batch.inputs.append(path)
            self.batch.hashes.append(sha)
            noted = {what: row[k] for k, what in NOTED.items()} | {"graphs without units": int(row["neuron_count"] == 0)}
            events.append(("landed", sha, noted))
        return events

    def reject(self, reject: Reject) -> Event:
        """A rejected file, recorded with the batch."""
        self.batch.rejects.append(reject)
        return ("rejected", reject.content_hash, reject)

    def flush(self) -> list[Event]:
        """Settle the parsed graphs, commit the batch (nothing when it is empty) and start the next."""
        events = self.settle()
        if counts := self.batch.commit(DATA_TABLES, self.seen_rejects):
            events.append(("committed", counts))
        self.batch = Batch(self.settings.wh, self.settings.atlas, "graphs")
        return events


class LanderPool:
    """`workers` processes, each with a lander of its own, fed files from one queue (whoever is free
    takes the next). Started by a fork server: a fork of this process (its deltalake, progress-bar or
    JVM threads holding locks) could hang. As with any start method other than fork, a script that
    ingests must guard its top level with `if __name__ == "__main__":`."""

    def __init__(self, workers: int, settings: Settings):
        context = get_context("forkserver")
        context.set_forkserver_preload([__name__])
        self.tasks, self.events = context.Queue(), context.Queue()
        self.processes = [
            context.Process(target=_work, args=(settings, self.tasks, self.events, os.getpid()), daemon=True) for _ in range(workers)
        ]
        for p in self.processes:
            p.start()
        self.running = len(self.processes)

    def submit(self, path: str, sha: str, data: bytes) -> None:
        self.tasks.put((path, sha, data))

    def results(self, wait: bool) -> list[Event]:
        """The events reported so far; with `wait`, at least one (unless every worker stopped). Raises
        when a worker failed or died."""
        out: list[Event] = []
        while True:
            try:
                message = self.events.get(timeout=0.5) if wait and not out and self.running else self.events.get_nowait()
            except queue.Empty:
                if out or not wait or not self.running:
                    return out
                if sum(p.is_alive() for p in self.processes) < self.running and self.events.empty():
                    raise RuntimeError("a graph ingest worker died (out of memory?): run the ingest again, it resumes") from None
                continue
            if isinstance(message, list):  # a lander's events
                out += message
            elif message[0] == "done":
                self.running -= 1
            else:
                error = _rebuilt(*message[1]) if isinstance(message[1], tuple) else message[1]
                raise error from RuntimeError(f"in a graph ingest worker:\n{message[2]}")

    def finish(self) -> list[Event]:
        """Each worker commits what it holds and stops; their last events."""
        for _ in self.processes:
            self.tasks.put(None)
        out: list[Event] = []
        while self.running:
            out += self.results(wait=True)
        return out

    def close(self) -> None:
        """Stop the workers (a worker cut off mid-batch leaves it uncommitted: the next run removes it)."""
        self.tasks.cancel_join_thread()  # files never taken must not hold this process at its exit
        for p in self.processes:
            if p.is_alive():
                p.terminate()
            p.join()


def _work(settings: Settings, tasks, events, main_pid: int) -> None:
    """A worker: land the files it takes until told to stop, then commit what it holds."""
    _die_with(main_pid)
    try:
        lander = Lander(settings)
        while True:
            try:
                task = tasks.get(timeout=IDLE_SECONDS)
            except queue.Empty:  # nothing came for a while: make the rows of what is parsed rather than idle
                if settled := lander.settle():
                    events.put(settled)
                task = tasks.get()
            if task is None:
                break
            events.put(lander.land(*task))
        events.put(lander.flush())
        events.put(("done",))
    except BaseException as e:  # the main process raises it (a full disk is then reported as anywhere) and stops the others
        try:
            pickle.dumps(e)
            error: BaseException | tuple[str, str] = e
        except Exception:  # noqa: BLE001 (one pickle cannot name travels as its class name and text)
            error = (type(e).__name__, str(e))
        events.put(("failed", error, traceback.format_exc(limit=-3)))


def _die_with(main_pid: int) -> None:
    """Exit at once (within 0.2 s) when the main process is gone (killed: nothing tells the workers): a
    worker must never commit a batch after the run holding the atlas lock ended, or a next run could
    remove that batch's rows as debris before its marker lands."""

    def watch() -> None:
        while True:
            time.sleep(0.2)
            try:
                os.kill(main_pid, 0)
            except ProcessLookupError:
                os._exit(1)

    threading.Thread(target=watch, name="main watch", daemon=True).start()


def _rebuilt(name: str, text: str) -> BaseException:
    """A worker's exception that pickle could not carry: deltalake's (classes of a Rust extension, which
    pickle cannot name) as the same class, anything else as a RuntimeError."""
    from deltalake import exceptions

    cls = getattr(exceptions, name, None)
    return cls(text) if isinstance(cls, type) and issubclass(cls, BaseException) else RuntimeError(f"{name}: {text}")


class InProcess:
    """The LanderPool interface over one lander in this process: for corpora too small to repay starting workers."""

    def __init__(self, lander: Lander):
        self.lander = lander
        self.pending: list[Event] = []

    def submit(self, path: str, sha: str, data: bytes) -> None:
        self.pending += self.lander.land(path, sha, data)

    def results(self, wait: bool) -> list[Event]:
        """The events so far; with `wait`, the parsed graphs are settled first (the caller waits for their verdicts)."""
        out, self.pending = self.pending + (self.lander.settle() if wait else []), []
        return out

    def finish(self) -> list[Event]:
        return self.results(wait=True)  # the local lander's last batch is committed with the main process's


@contextmanager
def landers(workers: int, local: Lander) -> Iterator[InProcess | LanderPool]:
    """Landers for one run: `local` (the main process's own) when `workers` is 1, else a LanderPool.
    Leaving the block early (an error, Ctrl-C) stops the workers."""
    if workers == 1:
        yield InProcess(local)
        return
    pool = LanderPool(workers, local.settings)
    try:
        yield pool
    finally:
        pool.close()
