"""What the explorer shows, as plain JSON-ready data: the Python API's queries (circuitlake.atlas) over
the explorer's session (app/explorer/session.py: a request that meets a build gets WarehouseBusy, the
page says so and reloads; the next request sees the new build)."""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from functools import lru_cache
from typing import Any

import duckdb

from circuitlake import lake, registry
from circuitlake.app.explorer.session import Session
from circuitlake.atlas import label_of
from circuitlake.errors import UserError

GRAPH_LINKS = 400  # links a graph page draws at most (the strongest above its threshold)
# a circuit page lists and draws at most CIRCUIT_MEMBERS members (those of most Infomap flow) and the
# CIRCUIT_EDGES strongest edges between them: the build draws those (models/module_edges.sql, same numbers)
CIRCUIT_MEMBERS = 400
CIRCUIT_EDGES = 600


def plain(value: Any) -> Any:
    """A DuckDB value as JSON: NaN and infinities as null, decimals as floats, times as ISO text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def rows(rel: duckdb.DuckDBPyRelation) -> list[dict[str, Any]]:
    return [{c: plain(v) for c, v in zip(rel.columns, r, strict=True)} for r in rel.fetchall()]


def atlases(session: Session) -> list[dict[str, Any]]:
    """The registered atlases (read from the lake, not DuckDB)."""
    return [
        {"name": a.name, "model_id": a.model_id, "layers": a.num_layers, "neurons_per_layer": a.neurons_per_layer, "unit": a.unit}
        for a in registry.all_atlases(session.wh)
    ]


def build_stamp(session: Session) -> int:
    """Changes with every write of the DuckDB warehouse (a build, a clustering refresh, an audit)."""
    return session.wh.duckdb.stat().st_mtime_ns


def overview(session: Session) -> dict[str, Any]:
    """Per atlas: its shape, the build's metadata figures, the largest circuits and the lake's sources
    (job, source, batches, rows landed and rejected, last landed); and the last audit report. The
    figures are read once per build and lake commit (`_figures`), not per request."""
    landed = lake.log_stamp(session.wh, "ingest_batches")
    found = [info | _figures(session, info["name"], build_stamp(session), landed) for info in atlases(session)]
    report = session.wh.last_audit
    audit = json.loads(report.read_text()) if report.exists() else None
    return {"atlases": found, "audit": audit}


@lru_cache(maxsize=32)
def _figures(session: Session, atlas: str, build: int, landed: int) -> dict[str, Any]:
    """An atlas's overview figures as of warehouse write `build` and `ingest_batches` commit `landed`."""
    with session.atlas(atlas) as a:
        sources = a.sql(
            """select job, coalesce(source, '') as source, count(*) as batches, sum(landed) as landed,
                      sum(rejected) as rejected, max(finished_at) as last_landed
               from lake.ingest_batches where atlas = $1 group by all order by job, source""",
            [a.name],
        )
        return {"metadata": a.metadata(), "circuits": rows(a.top_circuits(8, members=4)), "sources": rows(sources)}


def search(session: Session, atlas: str | None, text: str, limit: int = 20, semantic: bool = False, **endpoint: Any) -> dict[str, Any]:
    """Ranked hits (BM25, or semantic when asked), each with its labels and cluster path; `semantic_ready`
    says whether the atlas has label embeddings at all."""
    with session.atlas(atlas) as a:
        ready = a.search_kinds()
        hits = rows(a.search(text, limit, semantic, **endpoint)) if text.strip() else []
        return {
            "atlas": a.name,
            "query": text,
            "mode": "semantic" if semantic else "bm25",
            "semantic_ready": "semantic" in ready,
            "hits": hits,
        }


def neuron(session: Session, atlas: str | None, key: str, k: int = 10) -> dict[str, Any]:
    """The neuron card (circuitlake.atlas.Neuron.card: its strongest edges both ways under every edge
    method the atlas has, each neighbour with its label and cluster path) and the atlas's main method."""
    with session.atlas(atlas) as a:
        n = a.neuron(key)
        card = plain(n.card(k))
        card["method"] = a.method
        for g in card["graphs"]:
            g["graph_key"] = str(g["graph_key"])  # an int64: more digits than a JavaScript number keeps
        return card


def parse_path(path: str) -> tuple[int, int | None, int | None]:
    """A module path `3`, `3.12` or `3.12.7` as (top, sub, subsub)."""
    parts = path.split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise UserError(f"module path {path!r}: write it as top[.sub[.subsub]], e.g. 3 or 3.12")
    numbers = [int(p) for p in parts] + [None, None]
    return numbers[0], numbers[1], numbers[2]  # type: ignore[return-value]


def circuit(session: Session, atlas: str | None, path: str, method: str | None = None, max_edges: int = CIRCUIT_EDGES) -> dict[str, Any]:
    """A module: its clusters row, sub-modules, its CIRCUIT_MEMBERS members of most Infomap flow (by layer),
    and the strongest `max_edges` edges between those members (what the page draws)."""
    top, sub, subsub = parse_path(path)
    with session.atlas(atlas) as a:
        method = method or a.method
        module = rows(a.sql("select * exclude (atlas) from clusters where atlas = $1 and cluster_path = $2", [a.name, path]))
        if not module:
            raise UserError(f"{a.name} has no module {path}: see the overview's circuits, or a neuron's cluster path")
        children = a.sql(
            """select cluster_path, size, layer_min, layer_max from clusters
               where atlas = $1 and starts_with(cluster_path, $2 || '.') and level = $3 and is_module
               order by size desc, cluster_path limit 50""",
            [a.name, path, path.count(".") + 2],
        )
        members = rows(a.circuit(top, sub, subsub, most_flow=CIRCUIT_MEMBERS))
        members.sort(key=lambda m: (m["layer"], m["neuron"]))
        if max_edges <= CIRCUIT_EDGES:  # drawn at build time (models/module_edges.sql)
            strongest = rows(
                a.sql(
                    """select src_layer, src_neuron, tgt_layer, tgt_neuron, count, mean_weight, mean_abs_weight, edges_total
                       from module_edges
                       where atlas = $1 and cluster_path = $2 and method = $3 and strength_rank <= greatest($4, 1)
                       order by strength_rank""",
                    [a.name, path, method, max_edges],
                )
            )
        else:  # more than the build drew: one scan of the edges, each row carrying how many there are in all
            strongest = rows(
                a.sql(
                    """with shown as (select unnest($3::int[]) as layer, unnest($4::int[]) as neuron)
                       select e.src_layer, e.src_neuron, e.tgt_layer, e.tgt_neuron, e.count, e.mean_weight, e.mean_abs_weight,
                              count(*) over () as edges_total
                       from edges as e
                       semi join shown as s on e.src_layer = s.layer and e.src_neuron = s.neuron
                       semi join shown as t on e.tgt_layer = t.layer and e.tgt_neuron = t.neuron
                       where e.atlas = $1 and e.method = $2
                       order by e.mean_abs_weight desc, e.src_layer, e.src_neuron, e.tgt_layer, e.tgt_neuron
                       limit greatest($5, 1)""",
                    [a.name, method, [m["layer"] for m in members], [m["neuron"] for m in members], max_edges],
                )
            )
        total = strongest[0]["edges_total"] if strongest else 0
        for e in strongest:
            del e["edges_total"]
        return {
            "atlas": a.name,
            "path": path,
            "method": method,
            "module": module[0],
            "members": members,
            "submodules": rows(children),
            "edges": strongest[:max_edges],
            "edges_total": total,
        }


def graph(session: Session, atlas: str | None, graph_key: int, min_weight: float = 0.0, max_links: int = GRAPH_LINKS) -> dict[str, Any]:
    """One attribution graph from the lake, pruned on the server: its strongest `max_links` links with
    |weight| >= min_weight and the nodes they touch (neurons with their atlas label). Only the graph's
    own lake partition is read (its batch, looked up in `graph_index`: a graph of the build, so a
    committed batch), as plain Parquet files: the cost does not grow with the lake."""
    with session.atlas(atlas) as a:
        batch = a.sql("select batch from graph_index where atlas = $1 and graph_key = $2", [a.name, graph_key]).fetchone()
        if batch is None:
            raise UserError(f"{a.name} has no graph {graph_key}: follow one from a neuron's page")
        graphs, graph_links, graph_nodes = (a.lake_partition(t, batch[0]) for t in ("graphs", "graph_links", "graph_nodes"))
        found = rows(a.sql(f"select * exclude (atlas) from {graphs} where graph_key = $1", [graph_key]))
        if not found:  # retracted from the lake since the build
            raise UserError(f"graph {graph_key} of {a.name} has left the lake since the last build: run `circuitlake build`")
        g = found[0] | {"graph_key": str(graph_key)}  # an int64: more digits than a JavaScript number keeps
        links = a.sql(
            f"""select src_kind, src_layer, src_feature, src_pos, tgt_kind, tgt_layer, tgt_feature, tgt_pos, weight
                from {graph_links} where graph_key = $1 and abs(weight) >= $2
                order by abs(weight) desc, src_layer, src_feature, src_pos, tgt_layer, tgt_feature, tgt_pos
                limit $3""",
            [graph_key, min_weight, max_links],
        )
        kept = rows(links)
        nodes = a.sql(
            f"""with nodes as (select * from {graph_nodes} where graph_key = $2)
                select g.kind, g.layer, g.feature, g.position, g.influence, g.activation, g.clerp, {label_of("n")} as label
                from nodes as g
                -- units only: embedding and logit nodes have no layer, error nodes feature -1
                left join (select * from neurons where atlas = $1) as n on n.layer = g.layer and n.neuron = g.feature""",
            [a.name, graph_key],
        )
        touched = {(lk[f"{s}_kind"], lk[f"{s}_layer"], lk[f"{s}_feature"], lk[f"{s}_pos"]) for lk in kept for s in ("src", "tgt")}
        every = rows(nodes)
        total = a.sql(f"select count(*), max(abs(weight)) from {graph_links} where graph_key = $1", [graph_key]).fetchone()
        return {
            "atlas": a.name,
            "graph": g,
            "min_weight": min_weight,
            "links": kept,
            "links_total": total[0] if total else 0,
            "max_abs_weight": plain(total[1]) if total else None,
            "nodes": [n for n in every if (n["kind"], n["layer"], n["feature"], n["position"]) in touched],
            "nodes_total": len(every),
        }
