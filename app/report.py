"""`circuitlake audit`: run every SQLMesh audit against the published tables and write the report.

SQLMesh does not store audit results, so this runs them (through SQLMesh's own evaluator) and
writes Markdown and JSON: each audit with pass/fail and its failing-row count, row counts per
table and atlas, and the key figures per atlas. Non-blocking audits are reported like the rest.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from circuitlake import locks, project
from circuitlake.app.build import ensure_free
from circuitlake.jobs.label.settings import PRICES
from circuitlake.settings import Warehouse

COUNTED_TABLES = [
    "main.neurons",
    "main.edges",
    "main.edges_by_target",
    "main.clusters",
    "main.neuron_graphs",
    "main.metadata",
    "lake.graphs",
    "lake.graph_nodes",
    "lake.graph_links",
    "lake.labels",
    "lake.wiring",
    "lake.projections",
    "lake.rejects",
]

# key figures: each query returns (atlas, figure, value)
FIGURES = [
    "select atlas, 'graphs', count(*) from lake.graphs group by atlas",
    "select atlas, 'graphs with nodes_exceeded', count(*) filter (where nodes_exceeded) from lake.graphs group by atlas",
    "select atlas, 'neurons (universe)', count(*) from main.neurons group by atlas",
    "select atlas, 'neurons seen in graphs', count(*) filter (where appearance_count > 0) from main.neurons group by atlas",
    "select atlas, 'relp edges published', count(*) from main.edges where method = 'relp' group by atlas",
    "select atlas, 'weight-graph edges (downstream wiring)', count(*) from main.edges where method = 'weight_graph' group by atlas",
    "select atlas, 'relp edge threshold (count >=)', relp_min_count from lake.atlases",
    # label coverage: the share of the universe with a non-empty label, against the atlas threshold
    """select n.atlas, 'label coverage',
              printf('%.2f%%', 100.0 * count(n.label) / count(*)) || coalesce(
                case when count(n.label) >= a.min_label_coverage * count(*) then ' >= ' else ' < ' end
                || printf('%.2f%%', 100 * a.min_label_coverage), ' (no threshold)')
       from main.neurons as n join lake.atlases as a on n.atlas = a.atlas
       group by n.atlas, a.min_label_coverage""",
    """with universe as (select atlas, count(*) as size from main.neurons group by atlas)
       select l.atlas, 'label coverage of ' || l.source || ' / ' || l.pass,
              printf('%.2f%%', 100.0 * count(distinct (l.layer, l.neuron)) / u.size)
       from lake.labels as l
       join main.neurons as n on l.atlas = n.atlas and l.layer = n.layer and l.neuron = n.neuron
       join universe as u on l.atlas = u.atlas
       where trim(l.label) <> ''
       group by l.atlas, l.source, l.pass, u.size order by 2""",
    """with outside as (
         select l.atlas, l.layer, l.neuron from lake.labels as l
         anti join main.neurons as n on l.atlas = n.atlas and l.layer = n.layer and l.neuron = n.neuron)
       -- count only matched rows: a struct of two nulls (an atlas with none) is a value count(distinct) counts
       select a.atlas, 'labeled neurons outside the universe', count(distinct (o.layer, o.neuron)) filter (where o.atlas is not null)
       from lake.atlases as a left join outside as o on a.atlas = o.atlas
       group by a.atlas""",
    "select atlas, 'rejected records', count(*) from lake.rejects group by atlas",
    # clustering: settings, size, and whether new graphs arrived after the edges it read
    """select r.atlas, 'clusters', r.top_modules || ' top modules, ' || r.levels || ' levels, ' || r.neurons || ' neurons, '
              || r.edges || ' links (' || r.method || ' count >= ' || json_extract_string(r.settings, '$.min_count')
              || ', weight = mean_abs_weight^2, seed ' || json_extract_string(r.settings, '$.seed') || ', '
              || json_extract_string(r.settings, '$.trials') || ' trials, ' || json_extract_string(r.settings, '$.threads') || ' thread(s))'
       from lake.cluster_runs as r
       where r.batch = (select max(x.batch) from lake.cluster_runs as x where x.atlas = r.atlas)""",
    """select atlas, 'clusters stale (graphs landed after clustering)', value from main.metadata where key = 'clusters_stale'""",
    """select atlas, 'circuits of size >= 3 (real modules)', count(*) filter (where is_module and size >= 3)
       from main.clusters group by atlas""",
]

# the labeling job, per atlas and run (`circuitlake label`): calls, failures, tokens, cost, throughput, and the
# label-quality figures ARTIFACTS.md reports for the research runs
JOB_LABELS = """(select l.* from lake.labels as l semi join lake.ingest_batches as b
                  on l.atlas = b.atlas and l.batch = b.batch and b.job = 'label')"""
LABELING = [
    """select atlas, 'labeling ' || run || ': calls (ok / all), tokens in / out',
              count(*) filter (where outcome = 'ok') || ' / ' || count(*) || ', ' || sum(tokens_in) || ' / ' || sum(tokens_out)
       from lake.label_calls group by atlas, run""",
    """select atlas, 'labeling ' || run || ': failed calls by outcome',
              string_agg(outcome || ' ' || n, ', ' order by outcome)
       from (select atlas, run, outcome, count(*) as n from lake.label_calls where outcome <> 'ok' group by all)
       group by atlas, run""",
    """select c.atlas, 'labeling ' || c.run || ': estimated cost (USD)',
              printf('%.4f', sum(c.tokens_in * p.usd_in + c.tokens_out * p.usd_out) / 1e6)
              || case when bool_and(p.model is not null) then '' else ' (some models have no price)' end
       from lake.label_calls as c left join (values {prices}) as p(model, usd_in, usd_out) on c.model = p.model
       group by c.atlas, c.run""",
    """select atlas, 'labeling ' || run || ': labels per minute',
              printf('%.1f', 60 * count(*) filter (where outcome = 'ok')
                             / greatest(epoch(max(called_at)) - epoch(min(called_at)), 1))
       from lake.label_calls group by atlas, run""",
    # parsing issues: neurons whose answer never validated (the research pipeline stored 0.47% raw replies)
    """select atlas, 'labeling ' || run || ' / ' || pass || ': parsing issues (neurons never validated)',
              printf('%.2f%%', 100.0 * count(*) filter (where not ok) / count(*))
       from (select atlas, run, pass, layer, neuron, bool_or(outcome = 'ok') as ok from lake.label_calls group by all)
       group by atlas, run, pass""",
    f"""select atlas, 'labeling ' || source || ' / ' || pass || ': interpretability high / medium / low',
              printf('%.1f%% / %.1f%% / %.1f%%', 100.0 * count(*) filter (where interpretability = 'high') / count(*),
                     100.0 * count(*) filter (where interpretability = 'medium') / count(*),
                     100.0 * count(*) filter (where interpretability = 'low') / count(*))
       from {JOB_LABELS} group by atlas, source, pass""",
    f"""select atlas, 'labeling ' || source || ' / ' || pass || ': types',
              string_agg(type || ' ' || printf('%.1f%%', share), ', ' order by share desc)
       from (select atlas, source, pass, type, 100.0 * count(*) / sum(count(*)) over (partition by atlas, source, pass) as share
             from {JOB_LABELS} group by atlas, source, pass, type)
       group by atlas, source, pass""",
    f"""select atlas, 'labeling ' || source || ' / ' || pass || ': label uniqueness',
              printf('%.1f%%', 100.0 * count(distinct label) / count(*))
       from {JOB_LABELS} group by atlas, source, pass""",
    f"""select o.atlas, 'labeling ' || o.source || ': low output but high input interpretability', count(*)
       from {JOB_LABELS} as o join {JOB_LABELS} as i
         on o.atlas = i.atlas and o.source = i.source and o.layer = i.layer and o.neuron = i.neuron
       where o.pass = 'output' and i.pass = 'input' and o.interpretability = 'low' and i.interpretability = 'high'
       group by o.atlas, o.source""",
]


@dataclass
class AuditRow:
    name: str
    model: str
    passed: bool
    failing_rows: int
    blocking: bool


@dataclass
class Report:
    generated_at: str
    warehouse: str
    audits: list[AuditRow] = field(default_factory=list)
    row_counts: list[dict] = field(default_factory=list)
    figures: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(a.passed for a in self.audits)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "passed": self.passed}, indent=2, default=str)

    def to_markdown(self) -> str:
        failed = [a for a in self.audits if not a.passed]
        out = [
            "# circuitlake audit report",
            "",
            f"Warehouse `{self.warehouse}`, {self.generated_at}: "
            f"**{len(self.audits) - len(failed)} of {len(self.audits)} audits passed**" + (f", {len(failed)} FAILED" if failed else ""),
            "",
            "## Audits",
            "",
            "| audit | model | result | failing rows | blocking |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| {a.name} | {a.model} | {'pass' if a.passed else '**FAIL**'} | {a.failing_rows} | {'yes' if a.blocking else 'no'} |"
            for a in self.audits
        ]
        out += ["", "## Key figures", "", "| atlas | figure | value |", "|---|---|---|"]
        out += [f"| {f['atlas']} | {f['figure']} | {f['value']} |" for f in self.figures]
        out += ["", "## Row counts", "", "| table | atlas | rows |", "|---|---|---|"]
        out += [f"| {r['table']} | {r['atlas']} | {r['rows']} |" for r in self.row_counts]
        return "\n".join(out) + "\n"


@locks.writes_warehouse("audit")
def run_audits(wh: Warehouse) -> Report:
    """Evaluate every audit of every model (and the standalone ones) on the current tables; the report
    is also kept as `<warehouse>/last_audit.json`."""
    ensure_free(wh)
    ctx = project.context(wh)
    try:
        report = Report(generated_at=datetime.now(UTC).isoformat(timespec="seconds"), warehouse=str(wh.root))
        end = datetime.now(UTC)
        for name in sorted(ctx.snapshots):
            snapshot = ctx.snapshots[name]
            for result in ctx.snapshot_evaluator.audit(snapshot=snapshot, start="2026-01-01", end=end, snapshots=ctx.snapshots):
                if result.skipped:
                    continue
                model = result.model.name if result.model else "(standalone)"
                report.audits.append(AuditRow(result.audit.name, model, not result.count, int(result.count or 0), result.blocking))
        fetch = ctx.engine_adapter.fetchall
        for table in COUNTED_TABLES:
            for atlas, rows in fetch(f"select atlas, count(*) from {table} group by atlas order by atlas"):
                report.row_counts.append({"table": table, "atlas": atlas, "rows": rows})
        prices = ", ".join(f"('{model}', {usd_in}, {usd_out})" for model, (usd_in, usd_out) in PRICES.items())
        for sql in FIGURES + [q.replace("{prices}", prices) for q in LABELING]:
            for atlas, figure, value in fetch(sql):
                report.figures.append({"atlas": atlas, "figure": figure, "value": value})
        report.figures.sort(key=lambda f: f["atlas"])
        wh.last_audit.write_text(report.to_json())
        return report
    finally:
        ctx.close()
