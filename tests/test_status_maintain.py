"""`circuitlake status` tells what needs attention by its exit code; `circuitlake maintain` compacts and
vacuums without changing a row, and a build after it has nothing to do."""

from __future__ import annotations

import json

from conftest import cli
from deltalake import DeltaTable

from circuitlake import lake, registry
from circuitlake.app.build import build
from circuitlake.app.maintain import maintain
from circuitlake.app.status import warehouse_status
from circuitlake.ingest.graphs import ingest_graphs
from circuitlake.jobs.retract import retract, select


def test_status_follows_ingest_build_retract_and_cli_exit_codes(wh, atlas, small_corpus):
    files = sorted(str(f) for f in small_corpus.iterdir())
    ingest_graphs(wh, atlas, files[:12], batch_graphs=4, show_progress=False)
    status = warehouse_status(wh)
    (small,) = status["atlases"]
    assert small["graphs"] == 12 and small["graph_batches"] == 3 and small["batches_not_built"] == 3
    assert status["last_build"] is None and "3 batch(es) not built" in status["attention"][0]

    build(wh, cluster=False)
    status = warehouse_status(wh)
    (small,) = status["atlases"]
    assert small["batches_not_built"] == 0 and small["relp_edges"] > 0 and status["last_build"]["seconds"] > 0
    assert status["attention"] == [f"{atlas}: not clustered yet: run `circuitlake cluster --atlas {atlas}`"]

    retract(wh, atlas, select(wh, atlas, files=[files[0]]))
    (small,) = warehouse_status(wh)["atlases"]
    assert small["retractions_not_built"] == 1 and small["batches_not_built"] == 1  # the survivors' new batch
    done = cli("status", "--json", wh=wh.root)
    assert done.returncode == 1 and json.loads(done.stdout)["atlases"][0]["graphs"] == 11
    build(wh, cluster=False)
    (small,) = warehouse_status(wh)["atlases"]
    assert small["retractions_not_built"] == 0 and small["batches_not_built"] == 0

    registry.add(wh, registry.AtlasRecord(atlas="empty", model_id="m", num_layers=2, neurons_per_layer=4))
    build(wh, cluster=False)
    assert cli("status", "--atlas", "empty", wh=wh.root).returncode == 0  # nothing landed, nothing to do
    assert cli("status", "--atlas", "nope", wh=wh.root).returncode == 2
    shown = cli("status", wh=wh.root)
    assert shown.returncode == 1 and "needs attention: small: not clustered yet" in shown.stdout


def test_maintain_compacts_vacuums_and_changes_no_row(wh, atlas, small_corpus):
    files = sorted(str(f) for f in small_corpus.iterdir())
    for f in files[:6]:  # one commit per graph: many small files in the atlas's `rejects`-free tables
        ingest_graphs(wh, atlas, [f], show_progress=False)
    retract(wh, atlas, select(wh, atlas, files=[files[0]]))  # leaves deleted files for the vacuum
    build(wh, cluster=False)
    rows = {
        t: lake.read(wh, t).sort_by([(c, "ascending") for c in ("atlas", "batch")]) for t in ("graphs", "graph_links", "ingest_batches")
    }
    first = DeltaTable(str(wh.table("ingest_batches"))).version()

    report = maintain(wh, retain_hours=0)
    by_table = {t.table: t for t in report.tables}
    assert by_table["ingest_batches"].compacted > 1 and by_table["ingest_batches"].files_after == 1
    assert by_table["graph_links"].vacuumed > 0  # (a tiny lake may grow: checkpoints outweigh its JSON commits)
    for t, before in rows.items():
        assert lake.read(wh, t).sort_by([(c, "ascending") for c in ("atlas", "batch")]).equals(before), t
    # time travel before the vacuum is gone; the checkpoint is there
    assert (wh.table("ingest_batches") / "_delta_log" / "_last_checkpoint").exists()
    assert DeltaTable(str(wh.table("ingest_batches"))).version() > first
    # compaction and vacuum change no row: the next build restates nothing
    assert build(wh, cluster=False) == []
    busy = cli("maintain", "--retain-hours", "-1", wh=wh.root)
    assert busy.returncode == 2 and "--retain-hours" in busy.stderr
