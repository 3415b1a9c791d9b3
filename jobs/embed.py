"""`circuitlake embed`: label embeddings from any OpenAI-compatible embeddings endpoint, landed in the lake.

The text embedded is a neuron's label text as the built atlas has it (circuitlake/search.py LABEL_TEXT),
keyed by its sha256: a neuron is embedded again only when its label text changed or another model or
size is asked. Vectors commit every `commit_every` neurons or `commit_seconds` as one batch (job `embed`,
source = the run name, inputs = model and dimensions), so an interruption loses at most that interval
and a re-run resumes where the last commit ended. The neurons to do are found inside DuckDB and
streamed; no table passes whole through Python. The client retries 429 and 5xx answers itself
(exponential backoff honouring retry-after). The API key is read from the environment and never stored.
`circuitlake build` then publishes the vectors as FLOAT[d] for `circuitlake search --semantic`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import duckdb
import openai

from circuitlake import duck, lake, locks, registry, search
from circuitlake.errors import UserError
from circuitlake.lake import now
from circuitlake.progress import bar
from circuitlake.settings import Warehouse


@dataclass
class EmbedSettings:
    model: str = "text-embedding-3-small"
    dimensions: int = 256
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    batch_size: int = 128  # texts per request
    commit_every: int = 5000
    commit_seconds: float = 10.0
    run: str | None = None
    limit: int | None = None  # at most this many neurons (a trial run)


@dataclass
class EmbedReport:
    embedded: int = 0
    requests: int = 0
    tokens: int = 0
    already: int = 0  # neurons whose current text already has a vector of this model and size


def run_name(s: EmbedSettings) -> str:
    return s.run or f"embed-{s.model}-{s.dimensions}"


def _todo_sql(limit: int | None) -> str:
    """Parameters (atlas, model, dimensions): neurons whose current label text has no vector yet."""
    return f"""
with current_text as (
  select layer, neuron, {search.LABEL_TEXT} as text
  from {search.labeled_units("$1")}
  where {search.LABEL_TEXT} <> ''
)
select c.layer, c.neuron, c.text, sha256(c.text) as text_sha
from current_text as c
anti join (
  select layer, neuron, text_sha from lake.label_embeddings where atlas = $1 and model = $2 and dimensions = $3
) as e
  on c.layer = e.layer and c.neuron = e.neuron and sha256(c.text) = e.text_sha
order by c.layer, c.neuron
{"limit " + str(int(limit)) if limit is not None else ""}"""


def landing(wh: Warehouse, atlas: str, s: EmbedSettings) -> lake.Landing:
    """Vectors, committed as one batch (job `embed`, source = the run name) every `commit_every` neurons or `commit_seconds`."""
    inputs = lake.Inputs.recording(model=s.model, dimensions=s.dimensions)
    return lake.Landing(wh, atlas, "embed", run_name(s), inputs, ("label_embeddings",), s.commit_every, s.commit_seconds)


def _vectors(client: openai.OpenAI, s: EmbedSettings, texts: list[str]) -> tuple[list[list[float]], int]:
    """One request: a vector per text (checked: count, length, finite), and the tokens billed."""
    try:
        reply = client.embeddings.create(model=s.model, input=texts, dimensions=s.dimensions)
    except openai.APIError as e:
        raise UserError(f"embeddings endpoint failed ({type(e).__name__}); committed vectors are kept, re-run to go on") from None
    vectors = [d.embedding for d in sorted(reply.data, key=lambda d: d.index)]
    if len(vectors) != len(texts):
        raise UserError(f"embeddings endpoint returned {len(vectors)} vectors for {len(texts)} texts")
    for v in vectors:
        if len(v) != s.dimensions or not all(math.isfinite(x) for x in v):
            raise UserError(f"embeddings endpoint returned a vector of length {len(v)} (asked {s.dimensions}) or with non-finite values")
    return vectors, reply.usage.total_tokens if reply.usage else 0


@locks.writes_atlas("embed")
def embed(wh: Warehouse, atlas_name: str, s: EmbedSettings) -> EmbedReport:
    """Embed the label texts of the atlas's neurons that have no vector of this model and size yet."""
    atlas = registry.get(wh, atlas_name)
    secret = os.environ.get(s.api_key_env)
    if not secret and not s.base_url:
        raise UserError(f"set {s.api_key_env} (the API key) or --base-url for a local endpoint")
    client = openai.OpenAI(base_url=s.base_url, api_key=secret or "unused", max_retries=5, timeout=60)
    con = duck.load(duck.connect(wh, read_only=True), "delta")
    report = EmbedReport()
    try:
        params = [atlas.name, s.model, s.dimensions]
        try:
            todo = duck.scalar(con, f"select count(*) from ({_todo_sql(s.limit)})", params)
        except duckdb.CatalogException:
            raise UserError("the warehouse predates label embeddings: run `circuitlake build` first") from None
        labeled = duck.scalar(con, f"select count(*) from {search.labeled_units('$1')} where {search.LABEL_TEXT} <> ''", [atlas.name])
        report.already = labeled - todo if s.limit is None else 0
        lander = landing(wh, atlas.name, s)
        reader = con.execute(_todo_sql(s.limit), params).to_arrow_reader(s.batch_size)
        with bar() as progress:
            task = progress.add_task(f"embed -> {atlas.name} ({s.model}, {s.dimensions})", total=todo)
            for chunk in reader:
                rows = chunk.to_pylist()
                vectors, tokens = _vectors(client, s, [r["text"] for r in rows])
                stamp = now()
                lander.add(
                    [f"{r['layer']}/{r['neuron']}/{r['text_sha']}" for r in rows],
                    label_embeddings=[
                        {
                            "run": run_name(s),
                            "layer": r["layer"],
                            "neuron": r["neuron"],
                            "model": s.model,
                            "dimensions": s.dimensions,
                            "text_sha": r["text_sha"],
                            "embedding": v,
                            "embedded_at": stamp,
                        }
                        for r, v in zip(rows, vectors, strict=True)
                    ],
                )
                report.requests += 1
                report.tokens += tokens
                report.embedded += len(rows)
                progress.update(task, advance=len(rows))
        lander.commit()
    finally:
        con.close()
    return report
