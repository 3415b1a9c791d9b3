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
