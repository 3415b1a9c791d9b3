"""The explorer's hold on the DuckDB warehouse: read-only atlas connections kept between requests (a page
costs its queries, not a connection and an extension load) and given up the moment a writer asks.

Requests run one at a time. A watcher thread lets go of the connections and of the shared hold
(`locks.hold_reading`) within WATCH_SECONDS of a writer announcing itself (`locks.writer_waiting`), so
`circuitlake build` waits at most for the request in flight; requests meanwhile answer WarehouseBusy,
and the first request after the write opens the new build.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from circuitlake import locks
from circuitlake.atlas import Atlas
from circuitlake.settings import Warehouse

WATCH_SECONDS = 0.05


class Session:
    """Open atlases of one warehouse, by the name a request gave (None: the warehouse's only atlas)."""

    def __init__(self, wh: Warehouse):
        self.wh = wh
        self._lock = threading.Lock()
        self._hold: IO | None = None
        self._atlases: dict[str | None, Atlas] = {}
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="circuitlake-writer-watch", daemon=True)
        self._watcher.start()

    @contextmanager
    def atlas(self, name: str | None) -> Iterator[Atlas]:
        """The atlas for one request (WarehouseBusy while a writer writes or waits; UserError for an unknown atlas)."""
        with self._lock:
            if locks.writer_waiting(self.wh):
                self._let_go()
            if self._hold is None:
                self._hold = locks.hold_reading(self.wh)
            if name not in self._atlases:
                self._atlases[name] = Atlas(self.wh, name)
            yield self._atlases[name]

    @contextmanager
    def released(self) -> Iterator[None]:
        """No connection of this session open for the block (for a read that opens the file its own way)."""
        with self._lock:
            self._let_go()
            with locks.reading(self.wh):
                yield

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._let_go()

    def _let_go(self) -> None:
        for a in self._atlases.values():
            a.close()
        self._atlases.clear()
        if self._hold is not None:
            self._hold.close()
            self._hold = None

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_SECONDS):
            if self._hold is not None and locks.writer_waiting(self.wh):
                with self._lock:
                    self._let_go()
