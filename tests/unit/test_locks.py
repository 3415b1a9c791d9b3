"""Write locks (circuitlake/locks.py): one writer per atlas and per warehouse, reentrant in a process, released when the holder dies."""

from __future__ import annotations

import subprocess
import sys
import time

import pyarrow as pa
import pytest

from circuitlake import lake, locks, registry
from circuitlake.errors import WarehouseBusy
from circuitlake.settings import warehouse

HOLD = """
import sys, time
from circuitlake import locks
from circuitlake.settings import warehouse
with locks.atlas_lock(warehouse(sys.argv[1]), "a", "ingest graphs"), locks.warehouse_lock(warehouse(sys.argv[1]), "build"):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def wh(tmp_path):
    w = warehouse(tmp_path / "w")
    registry.add(w, registry.record(atlas="a", model_id="m", num_layers=2, neurons_per_layer=8))
    return w


def test_a_second_process_is_refused_naming_the_holder_until_it_dies(wh):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(wh.root)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(locks.AtlasBusy, match=rf"ingest graphs.*pid {holder.pid}"), locks.atlas_lock(wh, "a", "label"):
            pass
        with pytest.raises(WarehouseBusy, match="`build`"), locks.warehouse_lock(wh, "audit"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with locks.atlas_lock(wh, "a", "label"), locks.warehouse_lock(wh, "audit"):  # the OS released both
        pass


def test_locks_are_reentrant_within_a_process(wh):
    with locks.atlas_lock(wh, "a", "build"), locks.atlas_lock(wh, "a", "cluster"):
        pass
    with locks.warehouse_lock(wh, "build"), locks.warehouse_lock(wh, "cluster"):
        pass


def test_writes_atlas_discards_what_an_interrupted_writer_left_then_runs(wh):
    debris = lake.Batch(wh, "a", "labels")
    debris.add("labels", pa.Table.from_pylist([{"source": "s", "pass": "output", "layer": 0, "neuron": 1}], lake.row_schema("labels")))
    debris.spill("labels")
    seen = []

    @locks.writes_atlas("test job")
    def job(wh, atlas_name):
        seen.append(lake.read(wh, "labels").num_rows)
        return "done"

    started = time.monotonic()
    assert job(wh, "a") == "done" and seen == [0]
    assert time.monotonic() - started < 30


def _until(condition, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_a_writer_waits_for_the_readers_in_flight_and_new_readers_wait_for_it(wh):
    import threading

    reader = locks.hold_reading(wh)  # what `circuitlake serve` holds while it answers
    entered, release = threading.Event(), threading.Event()

    def write() -> None:
        with locks.warehouse_lock(wh, "build"):
            entered.set()
            release.wait(10)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert _until(lambda: locks.writer_waiting(wh)) and not entered.is_set()  # it announced itself and waits
        with pytest.raises(WarehouseBusy, match="being built"):
            locks.hold_reading(wh)  # a new reader does not starve it
        reader.close()
        assert entered.wait(5) and not locks.writer_waiting(wh)  # the reader let go: the writer writes
        with pytest.raises(WarehouseBusy, match="being built"):
            locks.hold_reading(wh)
    finally:
        release.set()
        writer.join()
    locks.hold_reading(wh).close()  # after it, readers are back


def test_a_writer_killed_while_waiting_does_not_keep_readers_out(wh):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (wh.root / ".writer.waiting").write_text(str(dead.pid))
    assert not locks.writer_waiting(wh)
    locks.hold_reading(wh).close()
