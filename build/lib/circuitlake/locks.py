"""One writer per atlas: the lock every job that writes an atlas's lake rows holds for its whole run."""

from __future__ import annotations

import fcntl
import functools
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

from circuitlake import lake, registry
from circuitlake.errors import UserError
from circuitlake.settings import Warehouse

F = TypeVar("F", bound=Callable)


class AtlasBusy(UserError):
    """Another job is writing the atlas."""


@contextmanager
def atlas_lock(wh: Warehouse, atlas: str, job: str) -> Iterator[None]:
    """Hold the atlas's write lock (`<lake>/_locks/<atlas>.lock`, an OS file lock) or fail fast with
    AtlasBusy naming the holder. The OS releases the lock when its process dies, so a killed job
    leaves no stale lock; its holder note is simply overwritten by the next one."""
    path = wh.lake / "_locks" / f"{atlas}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = json.loads(f.read() or "{}")
            raise AtlasBusy(
                f"atlas {atlas} is being written by `{holder.get('job', '?')}` (pid {holder.get('pid', '?')} "
                f"on {holder.get('host', '?')}, since {holder.get('since', '?')}): wait for it to finish, then retry"
            ) from None
        try:
            f.seek(0)
            f.truncate()
            f.write(
                json.dumps(
                    {"job": job, "pid": os.getpid(), "host": socket.gethostname(), "since": f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"}
                )
            )
            f.flush()
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def writes_atlas(job: str) -> Callable[[F], F]:
    """Decorator for a job `fn(wh, atlas_name, ...)` that writes the atlas: the call holds the atlas's
    write lock throughout and first removes what an interrupted writer left uncommitted (safe only
    under the lock: an uncommitted batch of a live writer is not debris)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(wh: Warehouse, atlas_name: str, *args, **kwargs):
            atlas = registry.get(wh, atlas_name).atlas  # an unknown atlas fails here, before any lock file
            with atlas_lock(wh, atlas, job):
                lake.discard_uncommitted(wh, atlas)
                return fn(wh, atlas_name, *args, **kwargs)

        return run  # type: ignore[return-value]

    return wrap
