"""The `circuitlake` command line.

Exit codes: 0 everything landed / passed; 1 some records were rejected (the rest landed) or an
audit failed; 2 nothing was done (bad usage, unknown atlas, missing input, warehouse busy); 3 a hard fault.
"""

# The commands parse their options and call the layers below; each imports what it runs when it runs,
# so `circuitlake --help` (and any one command) loads no more than it needs.
from __future__ import annotations

import functools
import json
import logging
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from circuitlake.errors import UserError
from circuitlake.formats import label_files
from circuitlake.progress import console, out, printable
from circuitlake.settings import LOCAL_GATEWAY, Warehouse, warehouse

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
atlas_app = typer.Typer(help="Register and list atlases.", no_args_is_help=True)
ingest_app = typer.Typer(help="Land research outputs in the Delta lake.", no_args_is_help=True)
app.add_typer(atlas_app, name="atlas")
app.add_typer(ingest_app, name="ingest")

EXIT_OK, EXIT_REJECTS, EXIT_NOTHING, EXIT_FAULT = 0, 1, 2, 3
LOW_DISK = 256 * 2**20  # free bytes under which a failed plan is reported as a full disk
ATLAS = typer.Option(None, "--atlas", help="Registered atlas (may be left out when the warehouse holds one).")


@app.callback()
def main(
    ctx: typer.Context,
    warehouse_dir: Optional[Path] = typer.Option(
        None, "--warehouse", help="Warehouse folder (default: $CIRCUITLAKE_WAREHOUSE or ./warehouse)."
    ),
):
    ctx.obj = warehouse(warehouse_dir)


def _is(e: BaseException, module: str, name: str) -> bool:
    """Whether `e` is exception class `module.name`; a library never imported raised nothing, so this
    does not import it to ask."""
    cls = getattr(sys.modules.get(module), name, None)
    return isinstance(cls, type) and isinstance(e, cls)


def _low_disk(wh: Warehouse | None) -> float | None:
    """MiB free on the warehouse's disk when under LOW_DISK, else None (also when it has no folder yet)."""
    free = shutil.disk_usage(wh.root).free if wh and wh.root.exists() else LOW_DISK
    return free / 2**20 if free < LOW_DISK else None


def _with_full_disk(cause: str, wh: Warehouse | None) -> str:
    """`cause`, followed by the disk being full when it is nearly so and the cause does not say it: the
    object store may lose the OS's reason ("Generic LocalFileSystem error") when its runtime shuts down."""
    free = _low_disk(wh)
    return cause if free is None or "No space left" in cause else f"{cause}: No space left on its disk ({free:.1f} MiB free)"


def fault(e: BaseException, wh: Warehouse | None) -> str | None:
    """One line naming the path and the cause of a hard fault (OS error, Delta log or DuckDB I/O error,
    a deltalake panic); None for anything else."""
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    if isinstance(e, OSError):
        where = e.filename or (wh and wh.root)
        cause = _with_full_disk(e.strerror or first, wh)
        return f"{where}: {cause} (nothing more was written; free space or fix permissions, then retry)"
    if _is(e, "deltalake.exceptions", "DeltaError") or _is(e, "duckdb", "IOException") or type(e).__name__ == "PanicException":
        named = re.search(r'path: "([^"]+)"|(/[^\s"\'{}]+)', first)  # the file the engine names, else the lake
        where = (named[1] or named[2]) if named else (wh.lake if wh else "the lake")
        cause = _with_full_disk(re.sub(r"\s*[A-Za-z]*\s*\{.*", "", first).strip(" :")[:200] or type(e).__name__, wh)
        return f"{where}: cannot read or write it: {cause} (check free space, permissions and the Delta log there)"
    if _is(e, "sqlmesh.utils.errors", "SQLMeshError") and wh and (free := _low_disk(wh)) is not None:
        # SQLMesh reports a failed plan without its cause: a nearly full disk is the likely one
        return f"{wh.root}: {first.rstrip('.')} with {free:.1f} MiB free on its disk (free space, then retry)"
    return None


def friendly(fn):
    """Turn UserError into one short red line and exit code 2, a hard fault into one line and exit 3."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            console.print(printable(f"error: {e}"), style="red", markup=False, soft_wrap=True)
            raise typer.Exit(EXIT_NOTHING) from None
        except BaseException as e:  # a hard fault: no space, no permission, a corrupt Delta log (deltalake may panic)
            ctx = kwargs.get("ctx") or next((a for a in args if isinstance(a, typer.Context)), None)
            chain: list[BaseException] = []  # SQLMesh wraps what failed under it ("Plan application failed")
            seen: BaseException | None = e
            while seen is not None and len(chain) < 10:
                chain.append(seen)
                seen = seen.__cause__ or seen.__context__
            cause = next((c for c in (fault(x, ctx.obj if ctx else None) for x in chain) if c), None)
            if cause is not None:
                console.print(printable(f"error: {cause}"), style="red", markup=False, soft_wrap=True)
                raise typer.Exit(EXIT_FAULT) from None
            if _is(e, "sqlmesh.utils.errors", "SQLMeshError"):
                console.print(printable(f"error: sqlmesh: {e}"), style="red", markup=False, soft_wrap=True)
                raise typer.Exit(EXIT_NOTHING) from None
            raise

    return wrapper


def _wh(ctx: typer.Context) -> Warehouse:
    """The warehouse of `--warehouse`, whose lake must exist (checked, refused when of an older schema);
    a command that reads or adds to a warehouse never creates one."""
    from circuitlake import lake

    lake.ensure(ctx.obj, create=False)
    return ctx.obj


def _new_wh(ctx: typer.Context) -> Warehouse:
    """The warehouse of `--warehouse`, created when missing (`atlas add`, `demo`)."""
    from circuitlake import lake

    lake.ensure(ctx.obj)
    return ctx.obj


def _atlas(wh: Warehouse, atlas: str | None) -> str:
    """The registered atlas `--atlas` names, or the warehouse's only one."""
    from circuitlake import registry

    return registry.resolve(wh, atlas).name


@atlas_app.command("add")
@friendly
def atlas_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Atlas name, e.g. qwen3-32b."),
    model: str = typer.Option(..., "--model", help="Hugging Face model id."),
    layers: int = typer.Option(..., "--layers", help="MLP layers."),
    neurons_per_layer: int = typer.Option(
        ..., "--neurons-per-layer", "--features-per-layer", help="Units per layer: MLP neurons (d_ffn), or transcoder features."
    ),
    unit: Optional[str] = typer.Option(
        None,
        "--unit",
        help="neuron (MLP neurons: RelP graphs) or transcoder (transcoder features: circuit-tracer, Neuronpedia graphs).",
    ),
    universe: Optional[str] = typer.Option(
        None, "--universe", help="grid (every neuron of the model, the default) or observed (neurons in graphs or wiring)."
    ),
    min_label_coverage: Optional[float] = typer.Option(
        None, "--min-label-coverage", help="Fraction of the universe that must be labeled, e.g. 0.978."
    ),
    relp_min_count: Optional[int] = typer.Option(None, "--relp-min-count", help="RelP edges publish at count >= this (default 3)."),
    label_precedence: list[str] = typer.Option(
        [],
        "--label-precedence",
        help="COLUMN=pass.field[@source],... best first, e.g. label=output.short_label,output.label,activation_pos.label "
        "(repeatable; columns not given keep the defaults).",
    ),
    cluster_method: Optional[str] = typer.Option(None, "--cluster-method", help="Edges Infomap clusters: relp (default) or weight_graph."),
    cluster_min_count: Optional[int] = typer.Option(
        None, "--cluster-min-count", help="Cluster edges with count >= this (default 5 for relp, 1 for weight_graph)."
    ),
    cluster_trials: Optional[int] = typer.Option(None, "--cluster-trials", help="Infomap trials (default 20)."),
    cluster_seed: Optional[int] = typer.Option(None, "--cluster-seed", help="Infomap seed (default 42)."),
    cluster_threads: Optional[int] = typer.Option(
        None, "--cluster-threads", help="Infomap threads (fixed per atlas, for determinism; default: every core)."
    ),
):
    """Register an atlas (or update its settings). Defaults and rules: circuitlake/registry.py (AtlasRecord)."""
    from circuitlake import registry

    precedence = {}
    for spec in label_precedence:
        column, _, rules = spec.partition("=")
        if not rules:
            raise UserError(f"--label-precedence {spec!r}: write COLUMN=pass.field,pass.field")
        precedence[column.strip()] = [r.strip() for r in rules.split(",") if r.strip()]
    cluster = dict(method=cluster_method, min_count=cluster_min_count, trials=cluster_trials, seed=cluster_seed, threads=cluster_threads)
    record = registry.record(
        atlas=name,
        model_id=model,
        num_layers=layers,
        neurons_per_layer=neurons_per_layer,
        universe=universe,
        unit=unit,
        min_label_coverage=min_label_coverage,
        relp_min_count=relp_min_count,
        settings={"label_precedence": precedence, "cluster": {k: v for k, v in cluster.items() if v is not None}},
    )
    registry.add(_new_wh(ctx), record)
    console.print(
        f"atlas {name}: {model}, {layers} x {neurons_per_layer} {registry.UNITS[record.unit]}, universe {record.universe}", markup=False
    )


@atlas_app.command("list")
@friendly
def atlas_list(ctx: typer.Context):
    """List registered atlases."""
    from circuitlake import registry

    for a in registry.all_atlases(_wh(ctx)):
        typer.echo(
            f"{a.name}\t{a.model_id}\t{a.num_layers}x{a.neurons_per_layer} {a.unit}s\t{a.universe}\t"
            f"min_label_coverage={a.min_label_coverage}"
        )


@ingest_app.command("graphs")
@friendly
def ingest_graphs_cmd(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(..., help="Graph files (.json, .json.gz), folders or globs."),
    atlas: Optional[str] = ATLAS,
    workers: Optional[int] = typer.Option(None, "--workers", help="Parser processes (default: all cores)."),
    batch_graphs: int = typer.Option(256, "--batch-graphs", help="Graphs per batch (one Delta commit per table)."),
):
    """Land attribution graphs; re-running with the same files adds nothing."""
    from circuitlake.ingest.graphs import ingest_graphs

    wh = _wh(ctx)
    report = ingest_graphs(wh, _atlas(wh, atlas), paths, workers=workers, batch_graphs=batch_graphs)
    console.print(
        f"graphs: {report.landed} landed, {report.skipped} already in the lake, {report.rejected} rejected ({report.batches} batches)"
    )
    noted = {k: v for k, v in report.noted.items() if v}
    if noted:
        console.print("landed graphs hold: " + ", ".join(f"{v:,} {k}" for k, v in noted.items()), markup=False)
    if report.rejected:
        console.print('rejected records are in lake table `rejects` (circuitlake query "select * from lake.rejects")')
    raise typer.Exit(report.exit_code)


@ingest_app.command("labels")
@friendly
def ingest_labels_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A label file (.json, .jsonl, optionally .gz)."),
    atlas: Optional[str] = ATLAS,
    source: Optional[str] = typer.Option(None, "--source", help="Source name, the unit a newer file replaces (default: the file's stem)."),
    fmt: str = typer.Option("auto", "--format", help=f"auto (detected) | {' | '.join(label_files.names())}"),
    labeler_model: Optional[str] = typer.Option(None, "--labeler-model", help="LLM that wrote the labels, recorded as provenance."),
):
    """Land a label file as the current labels of its source; re-ingesting the same file is a no-op."""
    from circuitlake.ingest.labels import ingest_labels

    wh = _wh(ctx)
    report = ingest_labels(wh, _atlas(wh, atlas), path, source=source, fmt=fmt, labeler_model=labeler_model)
    if report.skipped:
        console.print(f"labels: {path} is already the current version of its source; nothing to do")
    else:
        console.print(f"labels: {report.rows.get('labels', 0)} rows landed, {report.rejected} records rejected")
    raise typer.Exit(report.exit_code)


@ingest_app.command("wiring")
@friendly
def ingest_wiring_cmd(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., help="Wiring cache folder with layer_<i>.json files."),
    atlas: Optional[str] = ATLAS,
    source: Optional[str] = typer.Option(None, "--source", help="Source name (default cache:<folder name>)."),
):
    """Land a wiring cache, one layer file at a time; layers already landed are skipped."""
    from circuitlake.ingest.wiring import ingest_wiring

    wh = _wh(ctx)
    report = ingest_wiring(wh, _atlas(wh, atlas), folder, source=source)
    console.print(f"wiring: {report.landed} layers landed, {report.skipped} already in the lake, {report.rejected} entries rejected")
    raise typer.Exit(report.exit_code)


wiring_app = typer.Typer(help="Weight-based wiring.", no_args_is_help=True)
app.add_typer(wiring_app, name="wiring")


@wiring_app.command("compute")
@friendly
def wiring_compute_cmd(
    ctx: typer.Context,
    model_dir: Path = typer.Argument(..., help="Local Hugging Face checkpoint folder (safetensors)."),
    atlas: Optional[str] = ATLAS,
    top_k: int = typer.Option(10, "--top-k", help="Connections kept per neuron, direction and polarity."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 | bfloat16 | float16 | float64."),
    block_rows: int = typer.Option(2048, "--block-rows", help="Neurons per matrix-product block (memory knob)."),
):
    """Compute wiring (c_up, c_gate, polarity, effective strength, projections) from model weights; resumes per layer."""
    try:
        from circuitlake.ingest.wiring_compute import compute_wiring
    except ImportError as e:
        raise UserError(f"wiring from weights needs torch: pip install -e '.[wiring]' ({e})") from None
    wh = _wh(ctx)
    report = compute_wiring(wh, _atlas(wh, atlas), model_dir, top_k=top_k, device=device, dtype=dtype, block_rows=block_rows)
    console.print(f"wiring: {report.landed} layers computed, {report.skipped} already in the lake")


@app.command()
@friendly
def build(
    ctx: typer.Context,
    gateway: str = typer.Option(
        LOCAL_GATEWAY, "--gateway", help="sqlmesh_config.yaml gateway: local (DuckDB) or spark (the models only: README, Spark)."
    ),
):
    """Apply model changes and process new lake batches (sqlmesh plan, then restate what reads moved lake tables)."""
    from circuitlake.app.build import build as run_build

    run_build(_wh(ctx), gateway=gateway)


@app.command("cluster")
@friendly
def cluster_cmd(
    ctx: typer.Context,
    atlas: Optional[str] = ATLAS,
    force: bool = typer.Option(False, "--force", help="Run even when edges and settings are unchanged."),
):
    """Run Infomap over the atlas's published edges (settings from the registry) and refresh neurons/clusters."""
    from circuitlake.app.build import ensure_free, refresh_clusters
    from circuitlake.jobs.cluster import cluster

    wh = _wh(ctx)
    ensure_free(wh)
    if cluster(wh, _atlas(wh, atlas), force=force):
        refresh_clusters(wh)


@app.command()
@friendly
def status(
    ctx: typer.Context,
    atlas: Optional[str] = typer.Option(None, "--atlas", help="Only this atlas (default: every atlas)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
):
    """What the lake holds and the warehouse has built. Exit 0: all built and fine; 1: something needs
    attention (batches or a retraction not built, stale or missing clusters, failed audits)."""
    from circuitlake.app.status import show_status, warehouse_status

    result = warehouse_status(_wh(ctx), atlas)
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        show_status(result)
    raise typer.Exit(1 if result["attention"] else 0)


@app.command()
@friendly
def label(
    ctx: typer.Context,
    atlas: Optional[str] = ATLAS,
    pass_: str = typer.Option("both", "--pass", help="output (what it does) | input (what triggers it) | both."),
    model: str = typer.Option("gpt-5-mini", "--model", help="Model name the endpoint knows."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint (default: OpenAI)."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help="Environment variable holding the key."),
    concurrency: int = typer.Option(4, "--concurrency", help="Calls in flight."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Label at most this many neurons per pass."),
    layers: Optional[str] = typer.Option(None, "--layers", help="Layer range A-B."),
    run: Optional[str] = typer.Option(None, "--run", help="Run name, the source of its labels (default label-<model>)."),
    max_cost: Optional[float] = typer.Option(None, "--max-cost", help="Stop cleanly once the estimated cost reaches this (USD)."),
    dry: bool = typer.Option(False, "--dry-run", help="Print a few prompts and the estimated tokens and cost; call nothing."),
    batch_api: bool = typer.Option(False, "--batch-api", help="One OpenAI Batch API job per layer (half price, hours)."),
    poll_seconds: float = typer.Option(60, "--poll-seconds", help="With --batch-api: seconds between status checks."),
    wait_minutes: Optional[float] = typer.Option(None, "--wait-minutes", help="With --batch-api: stop waiting then; a re-run resumes."),
):
    """Label neurons with an LLM, two passes, resumable; labels land in the lake (build to publish them)."""
    from circuitlake.jobs.label import LabelSettings, dry_run, label_with_batches
    from circuitlake.jobs.label import label as run_label

    passes = {"output": ["output"], "input": ["input"], "both": ["output", "input"]}.get(pass_)
    if passes is None:
        raise UserError("--pass is output, input or both")
    span = None
    if layers:
        lo, _, hi = layers.partition("-")
        if not (lo.isdigit() and (hi or lo).isdigit()):
            raise UserError("--layers is A-B, e.g. 10-20")
        span = (int(lo), int(hi or lo))
    settings = LabelSettings(
        model=model,
        base_url=base_url,
        api_key_env=api_key_env,
        concurrency=concurrency,
        limit=limit,
        layers=span,
        run=run,
        max_cost=max_cost,
    )
    wh = _wh(ctx)
    atlas = _atlas(wh, atlas)
    if dry:
        for line in dry_run(wh, atlas, passes, settings):
            out.print(line, markup=False, highlight=False)
        return
    if batch_api:
        wait = None if wait_minutes is None else wait_minutes * 60
        report = label_with_batches(wh, atlas, passes, settings, poll_seconds=poll_seconds, wait_seconds=wait)
    else:
        report = run_label(wh, atlas, passes, settings)
    console.print(
        f"label: {report.labeled} labeled, {report.failed} failed, {report.calls} calls, "
        f"{report.tokens_in:,} tokens in, {report.tokens_out:,} out, ~${report.cost:.2f}; run `circuitlake build` to publish"
    )
    raise typer.Exit(1 if report.failed else 0)


@app.command()
@friendly
def maintain(
    ctx: typer.Context,
    atlas: Optional[str] = typer.Option(None, "--atlas", help="Compact only this atlas's partitions."),
    retain_hours: Optional[int] = typer.Option(
        None, "--retain-hours", min=0, help="Time travel kept (hours; default a week); older files are vacuumed."
    ),
):
    """Compact, checkpoint and vacuum the lake; drop expired SQLMesh snapshots. Exit 0 when done, 2 when busy."""
    from circuitlake.app.maintain import maintain as run_maintain
    from circuitlake.app.status import size_text

    report = run_maintain(_wh(ctx), atlas, retain_hours)
    shown = Table("lake table", "files before", "files after", "compacted", "vacuumed")
    for t in report.tables:
        shown.add_row(t.table, str(t.files_before), str(t.files_after), str(t.compacted), str(t.vacuumed))
    out.print(shown)
    out.print(
        f"lake {size_text(report.lake_before)} -> {size_text(report.lake_after)}; warehouse file {size_text(report.warehouse_before)} -> "
        f"{size_text(report.warehouse_after)} ({size_text(report.warehouse_free_after)} free for reuse); "
        f"{report.dropped_ledgers} orphan ledger(s) dropped"
    )


@app.command()
@friendly
def migrate(ctx: typer.Context):
    """Bring the lake to this circuitlake's schema version, keeping every row (other commands refuse an older lake)."""
    from circuitlake import lake, migrations

    steps = migrations.migrate(ctx.obj)
    for step in steps:
        console.print(f"migrate: {step}")
    console.print(f"migrate: the lake is at schema version {lake.SCHEMA_VERSION}" + ("" if steps else " already; nothing to do"))


@app.command("retract")
@friendly
def retract_cmd(
    ctx: typer.Context,
    atlas: Optional[str] = ATLAS,
    batch: list[str] = typer.Option([], "--batch", help="A batch id to take out (repeatable)."),
    source: Optional[str] = typer.Option(None, "--source", help="Take out every batch of this label/wiring source."),
    files: list[str] = typer.Option(
        [], "--files", help="Take out the data landed from this file (repeatable); the other graphs of its batch are kept in a new batch."
    ),
    everything: bool = typer.Option(False, "--all", help="Take out every batch of the atlas (it stays registered)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would go; change nothing."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
):
    """Remove batches from the lake (one Delta commit per table; time travel keeps them until vacuum).
    The next `circuitlake build` then equals a build that never saw them."""
    from circuitlake.jobs.retract import retract, select

    wh = _wh(ctx)
    atlas = _atlas(wh, atlas)
    selection = select(wh, atlas, batches=batch, source=source, files=files, everything=everything)
    shown = Table("batch", "job", "source", "landed", "kept in a new batch", title=f"retract from {atlas}: {selection.what}")
    for row in selection.summary():
        shown.add_row(*map(str, row))
    out.print(shown)
    if dry_run:
        return
    if not yes and not typer.confirm(f"take these {len(selection.batches)} batch(es) out of atlas {atlas}?"):
        raise typer.Exit(EXIT_NOTHING)
    retraction = retract(wh, atlas, selection)
    console.print(
        f"retract: {len(selection.batches)} batch(es) taken out ({retraction}); run `circuitlake build` to rebuild the atlas without them"
    )


@app.command()
@friendly
def audit(
    ctx: typer.Context,
    report: Optional[Path] = typer.Option(None, "--report", help="Write the Markdown report here."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the JSON report here."),
):
    """Run every audit; print the report; exit 1 when any audit fails."""
    from circuitlake.app.report import run_audits

    result = run_audits(_wh(ctx))
    markdown = result.to_markdown()
    typer.echo(markdown)
    if report:
        report.write_text(markdown)
    if json_path:
        json_path.write_text(result.to_json())
    raise typer.Exit(0 if result.passed else 1)


@app.command()
@friendly
def report(
    ctx: typer.Context,
    html_path: Path = typer.Option(..., "--html", help="Write the HTML atlas report here."),
    atlas: Optional[str] = ATLAS,
):
    """One self-contained HTML page (opens offline): the last audit, key figures and plots of an atlas."""
    from circuitlake.app.html_report import write_html
    from circuitlake.app.status import size_text
    from circuitlake.atlas import Atlas

    with Atlas(_wh(ctx), atlas) as a:
        plots = write_html(a, html_path)
    console.print(f"report: {html_path} ({len(plots)} plots, {size_text(html_path.stat().st_size)})")


@app.command()
@friendly
def query(
    ctx: typer.Context,
    sql: str = typer.Argument(..., help="SQL over neurons, edges, clusters, metadata, neuron_graphs, lake.*"),
    timeout: float = typer.Option(60, "--timeout", min=0.001, help="Stop the query after this many seconds (exit 2)."),
):
    """Run one read-only SELECT against the warehouse and print the result (no other file is touched)."""
    import duckdb

    from circuitlake import duck

    con = duck.connect_for_users(_wh(ctx))
    try:
        duck.run_limited(con, duck.one_read_statement(con, sql), timeout, lambda rel: rel.show(max_width=200))
    except duckdb.Error as e:
        raise UserError(str(e).splitlines()[0]) from None
    finally:
        con.close()


@app.command()
@friendly
def search(
    ctx: typer.Context,
    text: str = typer.Argument(..., help="What to look for, in words."),
    atlas: Optional[str] = ATLAS,
    limit: int = typer.Option(20, "--limit", min=1, help="Results to show."),
    semantic: bool = typer.Option(False, "--semantic", help="Rank by label-embedding similarity (needs `circuitlake embed`)."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="Embeddings endpoint for --semantic (default: OpenAI)."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help="Environment variable holding the API key."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
):
    """Find neurons by meaning: BM25 full-text search over their labels and descriptions (stems, any
    word), or with --semantic the nearest label embeddings. Exit 1 when nothing matches."""
    from circuitlake.app.explore import show_results
    from circuitlake.atlas import Atlas

    with Atlas(_wh(ctx), atlas) as a:
        rel = a.search(text, limit, semantic, base_url=base_url, api_key_env=api_key_env)
        if as_json:
            rows = [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]
            for row in rows:
                typer.echo(json.dumps(row))
            found = len(rows)
        else:
            found = show_results(rel, f"{'semantic' if semantic else 'full-text'} search in {a.name}: {text!r}")
    raise typer.Exit(0 if found else 1)


@app.command()
@friendly
def neuron(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="L24/N5326, L24/5326, 24_5326 or a feature_id."),
    atlas: Optional[str] = ATLAS,
    k: int = typer.Option(8, "--top", min=1, help="Edges, module members and graphs to show."),
    as_json: bool = typer.Option(False, "--json", help="Print the card as JSON."),
):
    """A neuron's card: its labels, strongest edges both ways, module, top graphs, output projections."""
    from circuitlake.app.explore import show_card
    from circuitlake.atlas import Atlas

    with Atlas(_wh(ctx), atlas) as a:
        n = a.neuron(key)
        if as_json:
            typer.echo(json.dumps(n.card(k), indent=2, default=str))
        else:
            show_card(n, k)


@app.command()
@friendly
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (default: this machine only)."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="Port to listen on."),
    compare: Optional[Path] = typer.Option(
        None, "--compare", help="An older build (an `export --layout circuitlake` file or a warehouse folder): the diff page."
    ),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="Embeddings endpoint for semantic search (default: OpenAI)."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help="Environment variable holding the API key."),
):
    """Browse the atlas in a web browser: overview, search, neuron cards, circuits, graphs, and a JSON API
    under /api (read-only; `circuitlake build` may run meanwhile, the pages then show the new build)."""
    from circuitlake.app.explorer.server import serve as run_server

    wh = _wh(ctx)
    if not wh.duckdb.exists():
        raise UserError(f"{wh.root} has no build yet: run `circuitlake build` first")
    run_server(wh, host, port, compare, {"base_url": base_url, "api_key_env": api_key_env})


@app.command("diff")
@friendly
def diff_cmd(
    old: Path = typer.Argument(..., help="The older build: an `export --layout circuitlake` file or a warehouse folder."),
    new: Path = typer.Argument(..., help="The newer build, the same way."),
    atlas: Optional[str] = ATLAS,
    factor: float = typer.Option(2.0, "--factor", help="An edge changed when its mean |weight| moved by more than this factor."),
    limit: int = typer.Option(10, "--limit", min=1, help="Examples of each kind to show (strongest or largest change first)."),
    as_json: bool = typer.Option(False, "--json", help="Print the diff as JSON."),
):
    """What changed between two builds of an atlas: edges that appeared, disappeared or changed their mean
    |weight|, labels that changed, neurons that moved between modules (with the AMI of the two clusterings)."""
    from circuitlake.app.explore import show_diff
    from circuitlake.jobs.diff import diff

    found = diff(old, new, atlas, factor, limit)
    if as_json:
        typer.echo(json.dumps(found.as_dict(), indent=2, default=str))
    else:
        show_diff(found)


@app.command("embed")
@friendly
def embed_cmd(
    ctx: typer.Context,
    atlas: Optional[str] = ATLAS,
    model: str = typer.Option("text-embedding-3-small", "--model", help="Embeddings model."),
    dimensions: int = typer.Option(256, "--dimensions", min=1, help="Vector length asked of the model."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint (default: OpenAI)."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help="Environment variable holding the API key."),
    batch_size: int = typer.Option(128, "--batch-size", min=1, help="Texts per request."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="At most this many neurons (a trial run)."),
    run: Optional[str] = typer.Option(None, "--run", help="Run name (default: embed-MODEL-DIMENSIONS)."),
):
    """Embed every labeled neuron's label text into the lake (resumable: a re-run embeds only what has no
    vector for this model and size); `circuitlake build` then publishes them for `search --semantic`."""
    from circuitlake.jobs.embed import EmbedSettings, embed

    wh = _wh(ctx)
    name = _atlas(wh, atlas)
    s = EmbedSettings(
        model=model, dimensions=dimensions, base_url=base_url, api_key_env=api_key_env, batch_size=batch_size, limit=limit, run=run
    )
    report = embed(wh, name, s)
    console.print(
        f"embed {name}: {report.embedded:,} neurons embedded in {report.requests:,} requests ({report.tokens:,} tokens), "
        f"{report.already:,} already had a vector; run `circuitlake build` to publish them"
    )


@app.command("export")
@friendly
def export_cmd(
    ctx: typer.Context,
    out: Path = typer.Argument(..., help="The DuckDB file to write (e.g. qwen32b_neurons.duckdb)."),
    atlas: Optional[str] = ATLAS,
    layout: str = typer.Option("circuitdatabase", "--layout", help="Table layout: circuitdatabase | qwen | circuitlake (jobs/export.py)."),
    method: Optional[str] = typer.Option(None, "--method", help="relp | weight_graph (default: relp when the atlas has RelP edges)."),
    top_k: Optional[int] = typer.Option(None, "--edges-top-k-per-neuron", min=1, help="Keep each neuron's K strongest downstream edges."),
    infomap: Optional[Path] = typer.Option(None, "--infomap-json", help="Also write the Infomap assignments file (research shape)."),
    force: bool = typer.Option(False, "--force", help="Replace OUT when it exists."),
):
    """One atlas as a standalone DuckDB file in the research layout (no atlas column, no extension needed):
    the research code and the ARTIFACTS.md queries read it unchanged."""
    from circuitlake.app.status import size_text
    from circuitlake.jobs.export import export, infomap_json

    wh = _wh(ctx)
    with console.status(f"export: writing {out}"):
        r = export(wh, atlas, out, layout, method, top_k, force)
    console.print(
        f"export: {r.path} ({r.layout} layout, {r.method} edges): {r.neurons:,} neurons, {r.edges:,} edges, {r.clusters:,} clusters, "
        f"{size_text(r.path.stat().st_size)}"
    )
    if infomap:
        console.print(f"export: {infomap}: {infomap_json(wh, atlas, infomap):,} neuron assignments")


@app.command()
@friendly
def init(
    folder: Path = typer.Argument(..., help="The project folder to create."),
    link: bool = typer.Option(False, "--link", help="Link to the installed models instead of copying them."),
):
    """Scaffold a SQLMesh project folder (models, audits, macros, config): `sqlmesh plan` works inside it,
    and CIRCUITLAKE_PROJECT=FOLDER makes the circuitlake commands use it."""
    from circuitlake.app.scaffold import scaffold

    scaffold(folder, link)
    console.print(
        f"init: {'linked' if link else 'copied'} the circuitlake project into {folder}; "
        f"`cd {folder} && CIRCUITLAKE_WAREHOUSE=/path/to/warehouse sqlmesh plan`, or set CIRCUITLAKE_PROJECT={folder}"
    )


@app.command()
@friendly
def sample(
    out: Path = typer.Argument(..., help="Folder to write the sample corpus into."),
    seed: int = typer.Option(0, "--seed"),
    graphs: int = typer.Option(300, "--graphs", help="Number of graphs."),
):
    """Write a deterministic sample atlas corpus: graphs, label files, a tiny model and its wiring cache."""
    from circuitlake.app.sample import SampleSpec, write_corpus

    written = write_corpus(SampleSpec(graphs=graphs, seed=seed), out)
    console.print(f"sample corpus written to {out} ({written} files)")


@app.command()
@friendly
def demo(
    ctx: typer.Context,
    corpus: Path = typer.Option(Path("sample"), "--corpus", help="Where to write the sample corpus."),
    report: Path = typer.Option(Path("audit_report.md"), "--report", help="Where to write the audit report."),
):
    """Sample corpus -> ingest -> build -> audit report -> the example queries, on the sample atlas."""
    from circuitlake.app.demo import run_demo

    raise typer.Exit(run_demo(_new_wh(ctx), corpus, report))


def run() -> None:
    """The `circuitlake` command: the app, then an immediate exit with its code. Native libraries
    (DuckDB, Arrow, deltalake) keep threads whose teardown at interpreter exit can abort a finished
    process ("terminate called without an active exception", exit -6); by then every file is written
    and closed, so the process ends without that teardown."""
    try:
        app()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
