"""One writer per atlas: the lock every job that writes an atlas's lake rows holds for its whole run."""

from __future__ import annotations

import fcntl
import functools
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TypeVar

from circuitlake import lake, registry
from circuitlake.errors import UserError, WarehouseBusy
from circuitlake.settings import Warehouse

F = TypeVar("F", bound=Callable)


class AtlasBusy(UserError):
    """Another job is writing the atlas."""


_HELD: dict[str, int] = {}  # lock file -> depth held by this process (a build's clustering step re-enters)


@contextmanager
def _exclusive(path: Path, job: str, busy: Callable[[dict], UserError]) -> Iterator[None]:
    """Hold the OS file lock on `path` (reentrant within this process), or fail fast with `busy(holder
    note)`. The OS releases the lock when its process dies, so a killed job leaves no stale lock; its
    holder note is simply overwritten by the next one."""
    key = str(path)
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise busy(json.loads(f.read() or "{}")) from None
        try:
            f.seek(0)
            f.truncate()
            f.write(
                json.dumps(
                    {"job": job, "pid": os.getpid(), "host": socket.gethostname(), "since": f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"}
                )
            )
            f.flush()
            _HELD[key] = 1
            yield
        finally:
            _HELD.pop(key, None)
            fcntl.flock(f, fcntl.LOCK_UN)


def _holder(note: dict) -> str:
    return f"`{note.get('job', '?')}` (pid {note.get('pid', '?')} on {note.get('host', '?')}, since {note.get('since', '?')})"


@contextmanager
def atlas_lock(wh: Warehouse, atlas: str, job: str) -> Iterator[None]:
    """Hold the atlas's write lock (`<lake>/_locks/<atlas>.lock`) or fail fast with AtlasBusy naming the holder."""
    busy = lambda note: AtlasBusy(f"atlas {atlas} is being written by {_holder(note)}: wait for it to finish, then retry")  # noqa: E731
    with _exclusive(wh.lake / "_locks" / f"{atlas}.lock", job, busy):
        yield


@contextmanager
def warehouse_lock(wh: Warehouse, job: str) -> Iterator[None]:
    """Hold the warehouse's writer lock (`<warehouse>/.writer.lock`): one build, audit or clustering
    refresh at a time writes the DuckDB warehouse and the SQLMesh state, or WarehouseBusy (exit 2) at once.
    Then wait for the `reading` readers in flight (a request's length) and keep new ones out until done."""
    busy = lambda note: WarehouseBusy(f"{wh.root} is being built by {_holder(note)}: wait for it to finish, then retry")  # noqa: E731
    with _exclusive(wh.root / ".writer.lock", job, busy), _readers_out(wh):
        yield


READERS_WAIT_SECONDS = 60.0  # how long a writer waits for the readers in flight before it gives up


def _readers_path(wh: Warehouse) -> Path:
    return wh.root / ".readers.lock"


def _waiting_path(wh: Warehouse) -> Path:
    return wh.root / ".writer.waiting"


@contextmanager
def _readers_out(wh: Warehouse) -> Iterator[None]:
    """Hold `<warehouse>/.readers.lock` exclusively (reentrant within this process): announce the wait
    (`writer_waiting`), then wait up to READERS_WAIT_SECONDS for the shared holds of readers to end."""
    path = _readers_path(wh)
    key = str(path)
    if _HELD.get(key):
        yield
        return
    waiting = _waiting_path(wh)
    with open(path, "a+") as f:
        waiting.write_text(str(os.getpid()))
        try:
            deadline = time.monotonic() + READERS_WAIT_SECONDS
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise WarehouseBusy(
                            f"{wh.root} is held by a reader (`circuitlake serve`) that does not let go: stop it, then retry"
                        ) from None
                    time.sleep(0.02)
        finally:
            waiting.unlink(missing_ok=True)
        _HELD[key] = 1
        try:
            yield
        finally:
            _HELD.pop(key, None)
            fcntl.flock(f, fcntl.LOCK_UN)


def writer_waiting(wh: Warehouse) -> bool:
    """Whether a live writer waits for the readers to let go of the warehouse (see `hold_reading`)."""
    try:
        pid = int(_waiting_path(wh).read_text() or 0)
    except (FileNotFoundError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False  # a writer killed while it waited
    except PermissionError:
        pass
    return True


def hold_reading(wh: Warehouse) -> IO:
    """A shared hold on `<warehouse>/.readers.lock` (an open file: close it to let go), or WarehouseBusy
    while a build, audit or clustering refresh writes the warehouse or waits to. Open DuckDB read-only
    only under a hold, close it before letting go, and let go when `writer_waiting`: a reader never fails
    a writer, the writer waits for the holds to end (READERS_WAIT_SECONDS at most)."""
    busy = WarehouseBusy(f"{wh.root} is being built: the page reloads when it is done")
    if writer_waiting(wh):
        raise busy
    f = open(_readers_path(wh), "a+")  # noqa: SIM115 (the hold is the open file)
    try:
        fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise busy from None
    return f


@contextmanager
def reading(wh: Warehouse) -> Iterator[None]:
    """`hold_reading` for the length of a block."""
    with hold_reading(wh):
        yield


def writes_atlas(job: str) -> Callable[[F], F]:
    """Decorator for a job `fn(wh, atlas_name, ...)` that writes the atlas: the call holds the atlas's
    write lock throughout and first removes what an interrupted writer left uncommitted (safe only
    under the lock: an uncommitted batch of a live writer is not debris)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(wh: Warehouse, atlas_name: str, *args, **kwargs):
            atlas = registry.get(wh, atlas_name).name  # an unknown atlas fails here, before any lock file
            with atlas_lock(wh, atlas, job):
                lake.discard_uncommitted(wh, atlas)
                return fn(wh, atlas_name, *args, **kwargs)

        return run  # type: ignore[return-value]

    return wrap


def writes_warehouse(job: str) -> Callable[[F], F]:
    """Decorator for a step `fn(wh, ...)` that writes the DuckDB warehouse or the SQLMesh state: the
    call holds the warehouse's writer lock throughout (a second build gets one line and exit 2)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(wh: Warehouse, *args, **kwargs):
            with warehouse_lock(wh, job):
                return fn(wh, *args, **kwargs)

        return run  # type: ignore[return-value]

    return wrap
