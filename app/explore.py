"""Terminal views of an atlas: search results, the neuron card and a diff (`circuitlake search`, `neuron`, `diff`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import duckdb
from rich.panel import Panel
from rich.table import Table

from circuitlake.atlas import Neuron
from circuitlake.progress import out, safe

if TYPE_CHECKING:
    from circuitlake.jobs.diff import AtlasDiff


def _text(value: Any, width: int = 70) -> str:
    """A cell: floats short, long text cut, and data made safe for the terminal (no control characters, no markup)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return safe(text if len(text) <= width else text[: width - 1] + "…")


def table(rel: duckdb.DuckDBPyRelation, title: str, columns: list[str] | None = None) -> Table:
    """A rich table of a relation's rows (the columns named, or all)."""
    names = columns or list(rel.columns)
    shown = rel.select(*names) if columns else rel
    return rows_table(names, shown.fetchall(), title)


def rows_table(names: list[str], rows: list[tuple] | list[list], title: str) -> Table:
    """A rich table of rows given as value sequences in the order of `names`."""
    t = Table(title=title, title_justify="left", show_lines=False)
    for name in names:
        t.add_column(name, overflow="fold")
    for row in rows:
        t.add_row(*(_text(v) for v in row))
    return t


def show_results(rel: duckdb.DuckDBPyRelation, title: str) -> int:
    """Print search results; returns how many."""
    rows = table(rel, title, ["layer", "neuron", "score", "label", "cluster_path"])
    out.print(rows)
    return rows.row_count


def show_card(n: Neuron, k: int) -> None:
    """The neuron card: labels, strongest edges both ways, module, graphs, output projections."""
    rel = n.row()
    found = rel.fetchone()
    row = dict(zip(rel.columns, found, strict=True)) if found else {}
    letter = "F" if n.atlas.info.unit == "transcoder" else "N"
    facts = [
        f"[bold]L{n.layer}/{letter}{n.neuron}[/] of {n.atlas.name} (feature_id {row.get('feature_id')})",
        f"label: {safe(row.get('label') or '(unlabeled)')}"
        + ("  (outside the atlas universe: in no graph or wiring yet)" if row.get("outside_universe") else ""),
        f"does (output): {safe(row.get('output_label') or '-')}    triggered by (input): {safe(row.get('input_label') or '-')}",
        f"appears in {row.get('appearance_count', 0):,} graphs; cluster {safe(row.get('cluster_path') or '(not clustered)')}"
        + (f", flow {row['infomap_flow']:.3g}" if row.get("infomap_flow") is not None else ""),
    ]
    out.print(Panel("\n".join(facts), title="neuron", title_align="left"))
    out.print(table(n.labels(), "labels (every source and pass)", ["source", "pass", "label", "description", "type", "labeler_model"]))
    for name, rel in (("downstream", n.downstream(k)), ("upstream", n.upstream(k))):
        out.print(table(rel, f"strongest {name} edges ({n.atlas.method})", ["layer", "neuron", "count", "mean_weight", "label"]))
    out.print(table(n.module(k), "other members of its module", ["layer", "neuron", "label", "cluster_path", "appearance_count"]))
    out.print(table(n.graphs(min(k, 5)), "graphs where it has the highest |influence|", ["max_abs_influence", "prompt"]))
    out.print(table(n.projections(), "output projections", ["kind", "rank", "token", "weight"]))


def show_diff(d: AtlasDiff) -> None:
    """The diff's counts and AMI, then its examples of each kind."""
    counts = [*d.counts.items(), ("AMI of the modules", "n/a" if d.ami is None else f"{d.ami:.4f}")]
    methods = ", ".join(d.methods) or "no common"
    title = f"{d.atlas}: {d.old} -> {d.new} ({methods} edges; changed: mean |w| x{d.factor:g} either way)"
    out.print(rows_table(["change", "count"], counts, title))
    edge_columns = ["method", "src_layer", "src_neuron", "tgt_layer", "tgt_neuron", "old_mean_abs_weight", "new_mean_abs_weight"]
    sections: list[tuple[str, list[dict[str, Any]], list[str]]] = [
        ("edges that appeared", d.edges_appeared, edge_columns),
        ("edges that disappeared", d.edges_disappeared, edge_columns),
        ("edges whose mean |weight| changed", d.edges_changed, edge_columns),
        ("labels that changed", d.labels_changed, ["layer", "neuron", "old_label", "new_label"]),
        (
            "neurons that moved between modules",
            d.neurons_moved,
            ["layer", "neuron", "label", "old_module", "new_module", "new_module_came_from"],
        ),
    ]
    for title, records, columns in sections:
        if records:
            out.print(rows_table(columns, [[r[c] for c in columns] for r in records], title))
