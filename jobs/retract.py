"""`circuitlake retract`: take committed batches back out of an atlas's lake.

What goes: whole batches (by id, by label/wiring source, or every batch of the atlas), or the graphs
of given files: a batch holding one of those files is retracted, and its other graphs are landed
again as one new batch (same rows, new batch id), so only the named files' data goes.

Commit protocol (an interruption at any point leaves the lake consistent):
1. the survivors' rows are appended under their new batch id (invisible: no marker yet);
2. one `retractions` row records what goes (the next `circuitlake build` rebuilds the atlas's
   batch layer from its remaining batches when it sees a retraction it has not handled);
3. one `ingest_batches` commit swaps the old markers for the survivors' marker: the commit point,
   where readers see the data gone and the survivors landed at once;
4. the old batches' rows, now uncommitted, are deleted (one commit per table); an interruption
   before that leaves them for the next writer's `discard_uncommitted`.
Time travel keeps the deleted rows until `circuitlake maintain` vacuums them. Retracting is not
undoable from circuitlake; re-ingesting the files lands them again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from circuitlake import lake, locks
from circuitlake.errors import UserError
from circuitlake.lake import content_hash, new_batch_id, now
from circuitlake.settings import Warehouse

GRAPH_TABLES = ("graphs", "graph_nodes", "graph_links")


@dataclass
class Selection:
    """What a retraction takes out: committed batches (their marker rows) and, for batches of which
    only some files go, the graphs that stay and move to a new batch."""

    atlas: str
    what: str  # the request, for the `retractions` row
    batches: list[lake.Marker]  # the markers of the batches retracted
    survivors: dict[str, list[str]] = field(default_factory=dict)  # retracted graph batch -> graph_ids that stay

    def summary(self) -> list[tuple[str, str, str, int, int]]:
        """(batch, job, source, records landed, records kept in a new batch) per retracted batch."""
        return [(b.batch, b.job, b.source or "", b.landed, len(self.survivors.get(b.batch, []))) for b in self.batches]


def _same_file(paths: list[str]) -> set[str]:
    """Paths as given and resolved, so a file named either way matches what ingest recorded."""
    return set(paths) | {str(Path(p).resolve()) for p in paths}


def select(
    wh: Warehouse,
    atlas: str,
    batches: list[str] | None = None,
    source: str | None = None,
    files: list[str] | None = None,
    everything: bool = False,
) -> Selection:
    """The committed batches a request names; UserError when it names none, or names an unknown batch."""
    if sum(bool(x) for x in (batches, source, files, everything)) != 1:
        raise UserError("name exactly one of --batch, --source, --files or --all")
    markers = lake.markers(wh, atlas)
    if batches:
        unknown = set(batches) - {m.batch for m in markers}
        if unknown:
            raise UserError(
                f"atlas {atlas} has no committed batch {', '.join(sorted(unknown))} (list them: circuitlake status --atlas {atlas})"
            )
        chosen, what = [m for m in markers if m.batch in batches], "batch " + " ".join(batches)
    elif source:
        chosen, what = [m for m in markers if m.source == source], f"source {source}"
    elif files:
        wanted = _same_file(files)
        chosen = [m for m in markers if _same_file(list(m.recorded.files)) & wanted]
        what = "files " + " ".join(files)
    else:
        chosen, what = markers, "all"
    if not chosen:
        raise UserError(f"nothing to retract: atlas {atlas} has no committed batch for {what}")
    selection = Selection(atlas, what, chosen)
    if files:
        for m in selection.batches:
            if m.job == "graphs":
                graphs = lake.read(wh, "graphs", ["graph_id", "source_path"], [("atlas", "=", atlas), ("batch", "=", m.batch)]).to_pylist()
                selection.survivors[m.batch] = [g["graph_id"] for g in graphs if not _same_file([g["source_path"]]) & wanted]
    return selection


def _reland_survivors(wh: Warehouse, selection: Selection) -> list[dict]:
    """Append the survivors' graph rows under new batch ids (step 1); returns their marker rows."""
    markers = []
    for m in selection.batches:
        keep = selection.survivors.get(m.batch)
        if not keep:
            continue
        new = new_batch_id("graphs")
        where = [("atlas", "=", selection.atlas), ("batch", "=", m.batch)]
        graphs = lake.read(wh, "graphs", filters=where)
        graphs = graphs.filter(pc.is_in(graphs["graph_id"], pa.array(keep)))
        keys = graphs["graph_key"]
        counts = {}
        for name in GRAPH_TABLES:
            rows = graphs if name == "graphs" else lake.read(wh, name, filters=where)
            rows = rows.filter(pc.is_in(rows["graph_key"], keys))
            rows = rows.set_column(rows.schema.get_field_index("batch"), "batch", pa.array([new] * rows.num_rows, pa.string()))
            lake.append(wh, name, rows)
            counts[name] = rows.num_rows
        markers.append(
            {
                **m.row(),
                "batch": new,
                "started_at": now(),
                "finished_at": now(),
                "inputs": graphs["source_path"].to_pylist(),
                "content_hash": content_hash(keep),
                "landed": len(keep),
                "skipped": 0,
                "rejected": 0,
                "rows": lake.rows_json(counts),
            }
        )
    return markers


@locks.writes_atlas("retract")
def retract(wh: Warehouse, atlas: str, selection: Selection) -> str:
    """Carry out a selection (see the module docstring); returns the retraction id. The selection is
    checked again under the lock: batches retracted meanwhile by another job are skipped."""
    committed = lake.committed_batches(wh, atlas)
    selection.batches = [m for m in selection.batches if m.batch in committed]
    if not selection.batches:
        raise UserError(f"nothing to retract: the batches of {selection.what} are no longer in atlas {atlas}")
    survivors = _reland_survivors(wh, selection)
    retraction = new_batch_id("retract")
    gone = [m.batch for m in selection.batches]
    lake.append(
        wh,
        "retractions",
        pa.Table.from_pylist(
            [
                {
                    "atlas": atlas,
                    "retraction": retraction,
                    "what": selection.what,
                    "batches": gone,
                    "jobs": sorted({m.job for m in selection.batches}),
                    "relanded": [m["batch"] for m in survivors],
                    "retracted_at": now(),
                }
            ],
            lake.TABLES["retractions"].schema,
        ),
    )
    lake.swap_markers(wh, atlas, gone, survivors)
    lake.discard_uncommitted(wh, atlas)
    return retraction
