"""`circuitlake report --html`: one self-contained HTML page per atlas (no network, no scripts).

The last audit report (`circuitlake audit`, kept beside the warehouse) and the key figures, then plots
drawn with matplotlib and inlined as SVG: label coverage by layer and by source, label type and
interpretability, appearance-count and edge-count distributions (log scales), the layer-to-layer edge
heatmap, cluster sizes, the top circuits with their members' labels, and a node-link drawing of the
largest circuit's internal edges. Every aggregate is computed in DuckDB (histograms in log bins), so
the page costs the same memory at 1.64M neurons as at 4K. A Content-Security-Policy forbids any fetch.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import numpy as np  # noqa: E402

from circuitlake import duck  # noqa: E402
from circuitlake.atlas import Atlas  # noqa: E402
from circuitlake.settings import Warehouse  # noqa: E402

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { padding: 2px 10px; border-bottom: 1px solid #eee; text-align: left; }
.pass { color: #1a7f37; } .fail { color: #cf222e; font-weight: bold; }
figure { margin: 1em 0; } figcaption { color: #555; } svg { max-width: 100%; height: auto; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
"""
PLOTS = (
    "coverage-by-layer",
    "coverage-by-source",
    "label-types",
    "appearance-counts",
    "edge-counts",
    "layer-heatmap",
    "cluster-sizes",
    "circuit-graph",
)


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE: inline SVG


def _figure(plot_id: str, caption: str, draw: Callable[[plt.Axes], None], size=(6.4, 3.6)) -> str:
    fig, ax = plt.subplots(figsize=size)
    draw(ax)
    return f'<figure id="{plot_id}">{_svg(fig)}<figcaption>{html.escape(caption)}</figcaption></figure>'


def _empty(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} yet", ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_axis_off()


def _table(headers: list[str], rows: list[tuple]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _log_hist(atlas: Atlas, sql: str) -> tuple[np.ndarray, np.ndarray]:
    """(bin lower edges, counts) of a positive integer column in powers-of-two bins, computed in DuckDB."""
    rows = atlas.sql(
        f"select cast(pow(2, floor(log2(v))) as bigint) as lo, count(*) from ({sql}) as t(v) where v > 0 group by lo order by lo",
        [atlas.name],
    ).fetchall()
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])


def _bars_log(ax, edges: np.ndarray, counts: np.ndarray, xlabel: str, what: str) -> None:
    if not len(edges):
        return _empty(ax, what)
    ax.bar(edges, counts, width=edges, align="edge", color="#4c72b0", edgecolor="white")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count (log)")


def coverage_by_layer(atlas: Atlas) -> str:
    rows = atlas.sql(
        """select layer, avg((label is not null)::int), avg((output_label is not null)::int), avg((input_label is not null)::int)
           from neurons where atlas = $1 group by layer order by layer""",
        [atlas.name],
    ).fetchall()

    def draw(ax):
        layers = [r[0] for r in rows]
        for i, name in enumerate(("label", "output label (pass 1)", "input label (pass 2)"), 1):
            ax.plot(layers, [100 * r[i] for r in rows], marker="o", ms=3, label=name)
        ax.set_xlabel("layer")
        ax.set_ylabel("% of neurons labeled")
        ax.set_ylim(0, 105)
        ax.legend(fontsize=8)

    return _figure("coverage-by-layer", "Label coverage by layer (share of the atlas's neurons)", draw)


def coverage_by_source(atlas: Atlas) -> str:
    rows = atlas.sql(
        """select source || ' / ' || pass, count(distinct (layer, neuron))
           from lake.labels where atlas = $1 and trim(label) <> '' group by all order by 2 desc""",
        [atlas.name],
    ).fetchall()
    universe = duck.scalar(atlas.con, "select count(*) from neurons where atlas = ?", [atlas.name]) or 1

    def draw(ax):
        if not rows:
            return _empty(ax, "labels")
        ax.barh([r[0] for r in rows][::-1], [100 * r[1] / universe for r in rows][::-1], color="#55a868")
        ax.set_xlabel("% of neurons with a label from the source")

    return _figure("coverage-by-source", "Label coverage by source and pass", draw)


def label_types(atlas: Atlas) -> str:
    rows = atlas.sql(
        """select 'type: ' || coalesce(type, '(none)'), count(*) from lake.labels
           where atlas = $1 and pass in ('output', 'input') group by all
           union all
           select 'interpretability: ' || coalesce(interpretability, '(none)'), count(*) from lake.labels
           where atlas = $1 and pass in ('output', 'input') group by all
           order by 1""",
        [atlas.name],
    ).fetchall()

    def draw(ax):
        if not rows:
            return _empty(ax, "two-pass labels")
        ax.barh([r[0] for r in rows][::-1], [r[1] for r in rows][::-1], color="#8172b3")
        ax.set_xlabel("labels (passes output and input)")

    return _figure("label-types", "Label type and interpretability distributions (two-pass labels)", draw)


def appearance_counts(atlas: Atlas) -> str:
    edges, counts = _log_hist(atlas, "select appearance_count from neurons where atlas = $1")
    return _figure(
        "appearance-counts",
        "Graphs per neuron (appearance count; log bins, log counts)",
        lambda ax: _bars_log(ax, edges, counts, "graphs containing the neuron", "appearances"),
    )


def edge_counts(atlas: Atlas) -> str:
    edges, counts = _log_hist(atlas, f"select count from edges where atlas = $1 and method = '{atlas.method}'")
    return _figure(
        "edge-counts",
        f"Graphs per published {atlas.method} edge (count; log bins, log counts)",
        lambda ax: _bars_log(ax, edges, counts, "edge count", "edges"),
    )


def layer_heatmap(atlas: Atlas) -> str:
    n = atlas.info.num_layers
    grid = np.zeros((n, n))
    for src, tgt, edges in atlas.sql(
        "select src_layer, tgt_layer, count(*) from edges where atlas = $1 and method = $2 group by all", [atlas.name, atlas.method]
    ).fetchall():
        grid[tgt, src] = edges

    def draw(ax):
        image = ax.imshow(np.log10(grid + 1), origin="lower", cmap="viridis", aspect="auto")
        ax.set_xlabel("source layer")
        ax.set_ylabel("target layer")
        ax.figure.colorbar(image, ax=ax, label="log10(edges + 1)")

    return _figure("layer-heatmap", f"Layer-to-layer {atlas.method} edges", draw, size=(5.6, 4.6))


def cluster_sizes(atlas: Atlas) -> str:
    edges, counts = _log_hist(atlas, "select size from clusters where atlas = $1 and is_module")
    return _figure(
        "cluster-sizes",
        "Module sizes (every level; log bins, log counts)",
        lambda ax: _bars_log(ax, edges, counts, "neurons in the module", "clusters"),
    )


def circuit_graph(atlas: Atlas, max_nodes: int = 60) -> str:
    """The largest second-level module that fits on a page (<= max_nodes members) with its internal
    edges, layers left to right."""
    picked = atlas.sql(
        """select top_cluster, sub_module, size from clusters
           where atlas = $1 and level = 2 and is_module and size between 3 and $2
           order by size desc, cluster_path limit 1""",
        [atlas.name, max_nodes],
    ).fetchone()
    nodes = atlas.circuit(picked[0], picked[1]).fetchall() if picked else []
    links = atlas.edges_within(picked[0], picked[1]).limit(500).fetchall() if picked else []

    def draw(ax):
        if not nodes:
            return _empty(ax, "clusters")
        place: dict[tuple[int, int], tuple[float, float]] = {}
        per_layer: dict[int, int] = {}
        for layer, neuron, *_ in nodes:
            per_layer[layer] = per_layer.get(layer, 0) + 1
            place[(layer, neuron)] = (layer, per_layer[layer] + 0.4 * (layer % 2))  # staggered: labels of next layers apart
        strongest = max((e[6] for e in links), default=1) or 1
        for s_l, s_n, t_l, t_n, _count, mean, mean_abs in links:
            (x0, y0), (x1, y1) = place[(s_l, s_n)], place[(t_l, t_n)]
            ax.plot([x0, x1], [y0, y1], color="#c44e52" if mean < 0 else "#4c72b0", alpha=0.15 + 0.7 * mean_abs / strongest, lw=1)
        xs, ys = zip(*place.values(), strict=True)
        ax.scatter(xs, ys, s=40, color="#222", zorder=3)
        for layer, neuron, label, *_ in nodes:
            ax.annotate(
                f"L{layer}/N{neuron} {str(label or '')[:24]}",
                place[(layer, neuron)],
                fontsize=6,
                xytext=(4, 2),
                textcoords="offset points",
                rotation=20,
            )
        ax.set_xlabel("layer")
        ax.set_xticks(sorted(per_layer))
        ax.set_yticks([])

    caption = (
        f"Circuit {picked[0]}.{picked[1]}: its {len(nodes)} members and {len(links)} internal {atlas.method} edges "
        "(blue excitatory, red inhibitory; opacity = mean |weight|)"
        if picked
        else "No circuit yet"
    )
    return _figure("circuit-graph", caption, draw, size=(9, 5.5))


def audit_section(wh: Warehouse) -> str:
    """The last audit report as a table (HTML, escaped)."""
    path = wh.last_audit
    if not path.exists():
        return "<p>No audit report yet: run <code>circuitlake audit</code>, then write this page again.</p>"
    report = json.loads(path.read_text())
    passed = sum(a["passed"] for a in report["audits"])
    rows = "".join(
        f"<tr><td>{html.escape(a['name'])}</td><td>{html.escape(a['model'])}</td>"
        f"<td class='{'pass' if a['passed'] else 'fail'}'>{'pass' if a['passed'] else 'FAIL'}</td><td>{a['failing_rows']}</td></tr>"
        for a in report["audits"]
    )
    return (
        f"<p>Last audit {html.escape(report['generated_at'])}: <b>{passed} of {len(report['audits'])} passed</b>.</p>"
        f"<table><tr><th>audit</th><th>model</th><th>result</th><th>failing rows</th></tr>{rows}</table>"
    )


def figures_section(wh: Warehouse, atlas: str) -> str:
    """The atlas's key figures from the last audit report as a table (HTML, escaped)."""
    path = wh.last_audit
    figures = [f for f in json.loads(path.read_text())["figures"] if f["atlas"] == atlas] if path.exists() else []
    return _table(["figure", "value"], [(f["figure"], f["value"]) for f in figures]) if figures else ""


def distributions(atlas: Atlas) -> list[str]:
    """The seven distribution plots (every plot but the circuit drawing), as <figure> HTML: three of
    labels, three of graphs and edges, one of circuits."""
    return [
        coverage_by_layer(atlas),
        coverage_by_source(atlas),
        label_types(atlas),
        appearance_counts(atlas),
        edge_counts(atlas),
        layer_heatmap(atlas),
        cluster_sizes(atlas),
    ]


def write_html(atlas: Atlas, out: Path) -> list[str]:
    """Write the page; returns the ids of the plots on it."""
    meta = atlas.metadata()
    circuits = atlas.top_circuits(10, members=5).fetchall()
    circuit_rows = [(r[0], r[1], f"{r[2]}-{r[3]}", "; ".join(str(x) for x in r[5] or [])) for r in circuits]
    plots = distributions(atlas)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>circuitlake atlas {html.escape(atlas.name)}</title><style>{STYLE}</style></head>
<body>
<h1>Atlas {html.escape(atlas.name)}</h1>
<p>{html.escape(atlas.info.model_id)}: {atlas.info.num_layers} layers x {atlas.info.neurons_per_layer:,} neurons;
{html.escape(meta.get("graphs", "0"))} graphs, {html.escape(meta.get("edges", "0"))} edges;
built {html.escape(meta.get("build_time", "?"))};
page written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by circuitlake {html.escape(meta.get("circuitlake_version", "?"))}.</p>
<h2>Audits</h2>{audit_section(atlas.warehouse)}
<h2>Key figures</h2>{figures_section(atlas.warehouse, atlas.name)}
<h2>Labels</h2><div class="grid">{"".join(plots[:3])}</div>
<h2>Graphs and edges</h2><div class="grid">{"".join(plots[3:6])}</div>
<h2>Circuits</h2><div class="grid">{plots[6]}</div>
{_table(["top circuit", "neurons", "layers", "members' labels (most seen first)"], circuit_rows)}
{circuit_graph(atlas)}
</body></html>
"""
    out.write_text(page)
    return list(PLOTS)
