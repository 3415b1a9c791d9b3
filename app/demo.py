"""`circuitlake demo`: the sample atlas end to end, then the research pipeline's example queries."""

from __future__ import annotations

from pathlib import Path

from circuitlake import duck, registry
from circuitlake.app import sample_transcoder
from circuitlake.app.build import build
from circuitlake.app.report import run_audits
from circuitlake.app.sample import SAMPLE_ATLAS, SampleSpec, write_corpus
from circuitlake.app.sample_transcoder import TRANSCODER_ATLAS, TranscoderSpec
from circuitlake.app.status import show_status, warehouse_status
from circuitlake.ingest.graphs import ingest_graphs
from circuitlake.ingest.labels import ingest_labels
from circuitlake.ingest.wiring import ingest_wiring
from circuitlake.progress import console
from circuitlake.settings import Warehouse

SAMPLE_MIN_LABEL_COVERAGE = 0.95

# ARTIFACTS.md's example queries, with `atlas = ...` added and the circuit picked from the data
EXAMPLE_QUERIES = {
    "Find all neurons in a circuit": """
        with circuit as (
          select top_cluster, sub_module from neurons
          where atlas = 'sample' and sub_module is not null
          group by all order by count(*) desc limit 1)
        select layer, neuron, label from neurons
        where atlas = 'sample'
          and top_cluster = (select top_cluster from circuit) and sub_module = (select sub_module from circuit)""",
    "Search by label": """
        select layer, neuron, label, top_cluster from neurons
        where atlas = 'sample' and label ilike '%capital%' limit 10""",
    # ARTIFACTS.md wrote list(... LIMIT 3), which DuckDB 1.5 does not parse: the slice [1:3] is the same
    "Top clusters by size with sample labels": """
        select top_cluster, count(*) as n,
               list(label order by max_activation desc nulls last)[1:3] as sample_labels
        from neurons where atlas = 'sample' and top_cluster is not null
        group by top_cluster order by n desc limit 20""",
    "Edges within a circuit": """
        with circuit as (
          select top_cluster, sub_module from neurons
          where atlas = 'sample' and sub_module is not null
          group by all order by count(*) desc limit 1)
        select e.src_layer, e.src_neuron, e.tgt_layer, e.tgt_neuron, e.mean_weight,
               n1.label as src_label, n2.label as tgt_label
        from edges e
        join neurons n1 on e.atlas = n1.atlas and e.src_layer = n1.layer and e.src_neuron = n1.neuron
        join neurons n2 on e.atlas = n2.atlas and e.tgt_layer = n2.layer and e.tgt_neuron = n2.neuron
        where e.atlas = 'sample'
          and n1.top_cluster = (select top_cluster from circuit) and n1.sub_module = (select sub_module from circuit)
          and n2.top_cluster = (select top_cluster from circuit) and n2.sub_module = (select sub_module from circuit)
        order by e.mean_abs_weight desc limit 10""",
    "Circuits of size >= 3 (real modules, not leaf rows)": """
        select cluster_path, level, size, layer_min, layer_max, median_layer
        from clusters where atlas = 'sample' and is_module and size >= 3
        order by size desc limit 10""",
    "Strongest edges with their labels": """
        select e.src_layer, e.src_neuron, e.tgt_layer, e.tgt_neuron, e.count, e.mean_weight,
               n1.label as src_label, n2.label as tgt_label
        from edges e
        join neurons n1 on e.atlas = n1.atlas and e.src_layer = n1.layer and e.src_neuron = n1.neuron
        join neurons n2 on e.atlas = n2.atlas and e.tgt_layer = n2.layer and e.tgt_neuron = n2.neuron
        where e.atlas = 'sample'
        order by e.mean_abs_weight * e.count desc limit 10""",
    "Weight-graph edges next to RelP edges (method keeps them apart)": """
        select method, count(*) as edges, min(count) as min_count, avg(mean_abs_weight) as avg_abs_weight
        from edges where atlas = 'sample' group by method order by method""",
    "Provenance": "select key, value from metadata where atlas = 'sample' order by key",
    "Transcoder features (circuit-tracer graphs, Neuronpedia labels): strongest edges": """
        select e.src_layer, e.src_neuron as src_feature, e.tgt_layer, e.tgt_neuron as tgt_feature, e.count, e.mean_weight,
               n1.label as src_label, n2.label as tgt_label
        from edges e
        join neurons n1 on e.atlas = n1.atlas and e.src_layer = n1.layer and e.src_neuron = n1.neuron
        join neurons n2 on e.atlas = n2.atlas and e.tgt_layer = n2.layer and e.tgt_neuron = n2.neuron
        where e.atlas = 'sample-clt'
        order by e.count desc, e.mean_abs_weight desc limit 10""",
    "Transcoder graphs: what the producers wrote beside the features": """
        select generator, count(*) as graphs, sum(error_nodes) as error_nodes, sum(ambiguous_links) as ambiguous_links,
               sum(zero_weight_links) as zero_weight_links_dropped
        from lake.graphs where atlas = 'sample-clt' group by generator order by generator""",
}


def add_transcoder_atlas(wh: Warehouse, corpus: Path, spec: TranscoderSpec | None = None) -> None:
    """The demo's second atlas: transcoder features, from circuit-tracer- and Neuronpedia-shaped graphs
    and Neuronpedia's explanation exports (app/sample_transcoder.py)."""
    spec = spec or TranscoderSpec()
    sample_transcoder.write_corpus(spec, corpus)
    registry.add(
        wh,
        registry.AtlasRecord(
            atlas=TRANSCODER_ATLAS,
            model_id="circuitlake/sample-clt",
            num_layers=spec.layers,
            neurons_per_layer=spec.features_per_layer,
            unit="transcoder",
            universe="observed",
        ),
    )
    r = ingest_graphs(wh, TRANSCODER_ATLAS, [str(corpus / "graphs")])
    noted = ", ".join(f"{v:,} {k}" for k, v in r.noted.items() if v)
    console.print(f"{TRANSCODER_ATLAS} graphs: {r.landed} landed, {r.rejected} rejected; they hold {noted}", markup=False)
    for label_file in sorted((corpus / "labels").iterdir()):
        r = ingest_labels(wh, TRANSCODER_ATLAS, label_file)
        console.print(f"{TRANSCODER_ATLAS} labels {label_file.name}: {r.rows.get('labels', 0)} rows, {r.rejected} rejected", markup=False)


def run_demo(
    wh: Warehouse, corpus: Path, report_path: Path, spec: SampleSpec | None = None, transcoder: TranscoderSpec | None = TranscoderSpec()
) -> int:
    """Run the demo (on the default sample corpus unless `spec` says otherwise, with the transcoder atlas
    of `transcoder` beside it unless None); returns the exit code (1 when an audit failed)."""
    spec = spec or SampleSpec()
    console.rule("1. sample corpus")
    write_corpus(spec, corpus)
    registry.add(
        wh,
        registry.AtlasRecord(
            atlas=SAMPLE_ATLAS,
            model_id="circuitlake/sample-8x512",
            num_layers=spec.layers,
            neurons_per_layer=spec.neurons_per_layer,
            min_label_coverage=SAMPLE_MIN_LABEL_COVERAGE,
        ),
    )
    console.rule("2. ingest")
    r = ingest_graphs(wh, SAMPLE_ATLAS, [str(corpus / "graphs")])
    console.print(f"graphs: {r.landed} landed, {r.skipped} already in the lake, {r.rejected} rejected")
    for label_file in sorted((corpus / "labels").iterdir()):  # the sample has a few bad records on purpose
        r = ingest_labels(wh, SAMPLE_ATLAS, label_file)
        console.print(
            f"labels {label_file.name}: {r.rows.get('labels', 0)} rows, {r.rejected} rejected, {r.skipped} file already in the lake"
        )
    r = ingest_wiring(wh, SAMPLE_ATLAS, corpus / "wiring_cache")
    console.print(f"wiring cache: {r.landed} layers landed, {r.skipped} already in the lake, {r.rejected} rejected")
    if transcoder:
        add_transcoder_atlas(wh, corpus / "transcoder", transcoder)
    console.rule("3. build (sqlmesh plan, then restate the models whose lake tables moved)")
    build(wh)
    console.rule("4. audits")
    report = run_audits(wh)
    report_path.write_text(report.to_markdown())
    report_path.with_suffix(".json").write_text(report.to_json())
    print(report.to_markdown())
    console.rule("5. example queries")
    con = duck.connect(wh, read_only=True)
    try:
        for title, sql in EXAMPLE_QUERIES.items():
            if TRANSCODER_ATLAS in sql and not transcoder:
                continue
            print(f"-- {title}")
            con.sql(sql).show(max_width=160)
    finally:
        con.close()
    console.rule("6. status (`circuitlake status`)")
    show_status(warehouse_status(wh))
    return 0 if report.passed else 1
