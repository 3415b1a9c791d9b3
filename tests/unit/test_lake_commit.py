"""The commit protocol (circuitlake/lake/commit.py) and the marker questions (markers.py) on real Delta tables."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from circuitlake import lake
from circuitlake.settings import warehouse


@pytest.fixture
def wh(tmp_path):
    w = warehouse(tmp_path / "w")
    lake.ensure(w)
    return w


def _label_rows(*units: tuple[int, int]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"source": "s", "pass": "output", "layer": layer, "neuron": n, "label": f"u{layer}/{n}"} for layer, n in units],
        lake.row_schema("labels"),
    )


def _batch(wh, *units, job="labels", source="s", inputs=None) -> lake.Batch:
    b = lake.Batch(wh, "a", job, source=source, inputs=inputs or ["/data/labels.jsonl"], hashes=[f"{u}" for u in units])
    b.add("labels", _label_rows(*units))
    return b


def test_ids_sort_by_time_and_hashes_ignore_order():
    first, second = lake.new_batch_id("graphs"), lake.new_batch_id("graphs")
    assert first < second and first.startswith("graphs-")
    assert lake.content_hash(["b", "a"]) == lake.content_hash(["a", "b"]) != lake.content_hash(["a"])


def test_commit_writes_the_data_first_and_the_marker_last(wh):
    batch = _batch(wh, (0, 1), (1, 2))
    before = lake.versions(wh, ("labels", "ingest_batches"))
    counts = batch.commit(["labels"], set())
    assert counts == {"labels": 2, "rejects": 0}
    after = lake.versions(wh, ("labels", "ingest_batches"))
    assert after["labels"] == before["labels"] + 1 and after["ingest_batches"] == before["ingest_batches"] + 1
    # the marker is the later commit: as of the labels commit, the batch was not committed yet
    data_time = DeltaTable(str(wh.table("labels"))).history(1)[0]["timestamp"]
    assert data_time <= DeltaTable(str(wh.table("ingest_batches"))).history(1)[0]["timestamp"]
    (m,) = lake.markers(wh, "a")
    assert (m.batch, m.landed, m.recorded.files) == (batch.batch, 2, ("/data/labels.jsonl",))
    assert lake.committed_batches(wh, "a") == {batch.batch}


def test_an_empty_batch_commits_nothing(wh):
    before = lake.versions(wh)
    assert lake.Batch(wh, "a", "labels").commit(["labels"], set()) == {}
    assert lake.versions(wh) == before


def test_rows_without_a_marker_are_invisible_and_discarded(wh):
    kept = _batch(wh, (0, 1))
    kept.commit(["labels"], set())
    orphan = _batch(wh, (0, 2))
    orphan.spill("labels")  # written, as by a run killed before its marker
    assert lake.committed_batches(wh, "a") == {kept.batch}
    assert lake.discard_uncommitted(wh, "a") == 1
    assert set(lake.read(wh, "labels", ["batch"])["batch"].to_pylist()) == {kept.batch}
    assert lake.discard_uncommitted(wh, "a") == 0


def test_rejects_are_recorded_once_across_reruns(wh):
    seen = lake.known_reject_keys(wh, "a")
    for _ in range(2):
        b = _batch(wh, (0, 1))
        b.rejects.append(lake.Reject("/data/x.json", "line 3", "bad", "sha"))
        b.commit(["labels"], seen)
    assert lake.read(wh, "rejects", ["record"])["record"].to_pylist() == ["line 3"]
    assert len(lake.known_reject_keys(wh, "a")) == 1


def test_swap_markers_retires_and_commits_in_one_commit(wh):
    old = _batch(wh, (0, 1))
    old.commit(["labels"], set())
    new = _batch(wh, (0, 1))
    new.spill("labels")
    (marker,) = lake.markers(wh, "a")
    before = lake.versions(wh, ("ingest_batches",))["ingest_batches"]
    lake.swap_markers(wh, "a", [old.batch], [{**marker.row(), "batch": new.batch}])
    assert lake.versions(wh, ("ingest_batches",))["ingest_batches"] == before + 1
    assert lake.committed_batches(wh, "a") == {new.batch}
    lake.discard_uncommitted(wh, "a")
    assert set(lake.read(wh, "labels", ["batch"])["batch"].to_pylist()) == {new.batch}


def test_landing_commits_every_interval_and_at_the_end(wh):
    landing = lake.Landing(wh, "a", "label", "run-1", lake.Inputs.recording(template="abc", model="m"), ("labels",), 2, 3600)
    landing.add(["h1"], labels=_label_rows((0, 1)).to_pylist())
    assert lake.markers(wh, "a") == []
    landing.add(["h2"], labels=_label_rows((0, 2)).to_pylist())  # the interval is full: one batch
    landing.add(["h3"], labels=[])
    landing.commit()
    landing.commit()  # nothing gathered: no batch
    markers = lake.markers(wh, "a")
    assert [m.landed for m in markers] == [2, 1]
    assert markers[0].recorded.fact("template") == "abc" and markers[0].source == "run-1"


def test_marker_questions(wh):
    first = _batch(wh, (0, 1), source="s")
    first.commit(["labels"], set())
    second = _batch(wh, (0, 2), source="s")
    second.commit(["labels"], set())
    _batch(wh, (0, 3), job="wiring", source="w").commit(["labels"], set())
    assert [m.batch for m in lake.markers(wh, "a", "labels", "s")] == sorted([first.batch, second.batch])
    assert lake.latest_hash(wh, "a", "labels", "s") == lake.content_hash(["(0, 2)"])
    assert lake.latest_hash(wh, "a", "labels", "nope") is None
    assert lake.landed_hashes(wh, "a", "wiring") == {lake.content_hash(["(0, 3)"])}
    assert lake.markers(wh, "other") == []


def test_inputs_are_files_or_facts_by_job():
    recorded = lake.Inputs.recording(openai_batch="b-1", pass_="output", layer=3)
    assert recorded == ["openai-batch:b-1", "pass:output", "layer:3"]
    facts = lake.Inputs.of("label_submit", recorded)
    assert (facts.fact("openai-batch"), facts.fact("layer"), facts.files) == ("b-1", "3", ())
    files = lake.Inputs.of("graphs", ["/x/a:b.json"])  # a path with a colon stays a path
    assert files.files == ("/x/a:b.json",) and files.fact("a") is None
