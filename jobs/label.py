"""`circuitlake label`: two-pass LLM neuron labels from any OpenAI-compatible endpoint, landed in the lake.

Pass `output` (what the neuron does) walks layers last -> first and pass `input` (what triggers it) first
-> last, so a prompt cites neighbours labeled earlier, in this run or before. Prompts are built from the
lake and the built atlas only: projections (promoted, suppressed, activating tokens), the strongest
edges with their neighbours' labels, activation descriptions. Templates are files under `prompts/`; the
sha256 of the one used is recorded with every call and in every batch's inputs.

An answer must validate against `circuitlake/formats/llm_answers.py`; one that never does (after
`attempts` tries) is a failure in `label_calls`, with its raw reply, never a label. 429 and 5xx back off
with jitter, honouring `retry-after`. Results commit every `commit_every` labels or `commit_seconds`
(labels and calls in one batch, job `label`, source = the run name), so an interruption loses at most
that interval, and a re-run skips the neurons already labeled for the same pass, model and template.
The API key is read from the environment and is never written to the lake, logs or errors.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import openai
import pyarrow as pa
from openai.types.chat import ChatCompletionUserMessageParam
from pydantic import ValidationError

from circuitlake import duck, lake, locks, registry
from circuitlake.errors import UserError
from circuitlake.formats.llm_answers import ANSWERS
from circuitlake.lake import Batch
from circuitlake.progress import bar, console
from circuitlake.settings import Warehouse, project_root

PASS_ORDER = {"output": -1, "input": 1}  # layer order: output walks down from the last layer, input up
# USD per million tokens (in, out); --price overrides; unknown models cost 0 and say so
PRICES = {"gpt-5-mini": (0.25, 2.0), "gpt-4.1-mini": (0.40, 1.60), "gpt-4.1": (2.0, 8.0), "gpt-5": (1.25, 10.0)}
NEIGHBOURS = 8  # edges cited per prompt
# per pass: the edges table to ask, the neuron's side, the neighbour's side, the strength order, the
# neighbour label cited: downstream output labels (later layers, labeled first in pass 1), upstream input
# labels, else output labels (earlier layers, labeled first in pass 2)
NEIGHBOURS_OF = {
    "output": ("edges", "src", "tgt", "mean_abs_weight", "coalesce(output_label, label)"),
    "input": ("edges_by_target", "tgt", "src", "abs(mean_weight)", "coalesce(input_label, output_label, label)"),
}
TRANSIENT = {"rate_limited", "server_error", "timeout", "error"}


@dataclass
class LabelSettings:
    model: str = "gpt-5-mini"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 4
    limit: int | None = None
    layers: tuple[int, int] | None = None
    attempts: int = 3  # answers that do not validate, per neuron and pass
    transient_retries: int = 5  # 429 / 5xx / timeouts, per neuron and pass
    max_cost: float | None = None
    run: str | None = None
    price: tuple[float, float] | None = None
    commit_every: int = 200
    commit_seconds: float = 5.0
    timeout: float = 60.0
    backoff: float = 1.0  # seconds, doubled per retry, with jitter


@dataclass
class Template:
    pass_: str
    text: str
    sha: str

    @classmethod
    def load(cls, pass_: str) -> Template:
        text = (project_root() / "prompts" / f"{pass_}.txt").read_text()
        return cls(pass_, text, hashlib.sha256(text.encode()).hexdigest())


@dataclass
class LabelReport:
    labeled: dict[str, int] = field(default_factory=dict)  # per pass
    failed: int = 0
    calls: int = 0
    skipped: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    stopped_at_cost: bool = False


def _price(s: LabelSettings) -> tuple[float, float]:
    return s.price or PRICES.get(s.model, (0.0, 0.0))


def run_name(s: LabelSettings) -> str:
    return s.run or f"label-{s.model}"


class Context:
    """What prompts cite, read from the lake and the built atlas, a layer at a time."""

    def __init__(self, wh: Warehouse, atlas: registry.AtlasRecord):
        self.wh, self.atlas = wh, atlas
        self.con = duck.connect(wh, read_only=True)
        self.fresh: dict[tuple[str, int, int], str] = {}  # labels of this run: (pass, layer, neuron) -> short label

    def close(self) -> None:
        self.con.close()

    def neurons(self, s: LabelSettings) -> list[tuple[int, int]]:
        lo, hi = s.layers or (0, self.atlas.num_layers - 1)
        rows = self.con.execute(
            "select layer, neuron from neurons where atlas = ? and layer between ? and ? order by layer, neuron",
            [self.atlas.name, lo, hi],
        ).fetchall()
        return [(int(a), int(b)) for a, b in rows]

    def _label(self, pass_: str, layer: int, neuron: int, stored: dict) -> str:
        return self.fresh.get((pass_, layer, neuron)) or stored.get((layer, neuron)) or "(unlabeled)"

    def layer_facts(self, pass_: str, layer: int) -> dict[int, dict]:
        """Per neuron of `layer`: tokens, neighbours with their labels, activation descriptions."""
        a = self.atlas.name
        facts: dict[int, dict] = {}

        def fact(n: int) -> dict:
            return facts.setdefault(n, {"promotes": [], "suppresses": [], "activates": [], "neighbours": [], "activations": []})

        for n, kind, token in self.con.execute(
            "select neuron, kind, coalesce(token, cast(token_id as text)) from lake.projections "
            "where atlas = ? and layer = ? order by neuron, kind, rank",
            [a, layer],
        ).fetchall():
            fact(n)[kind].append(token)
        for n, text in self.con.execute(
            "select neuron, label from lake.labels where atlas = ? and layer = ? and pass = 'activation_pos' and label <> ''",
            [a, layer],
        ).fetchall():
            fact(n)["activations"].append(text)
        table, own, other, strength, column = NEIGHBOURS_OF[pass_]
        edges = self.con.execute(
            f"select {own}_neuron, {other}_layer, {other}_neuron, mean_weight from ("
            f" select *, row_number() over (partition by {own}_neuron order by {strength} desc) as r"
            f" from {table} where atlas = ? and {own}_layer = ?) where r <= ? order by {own}_neuron, r",
            [a, layer, NEIGHBOURS],
        ).fetchall()
        others = {(int(ol), int(on)) for _, ol, on, _ in edges}
        stored: dict[tuple[int, int], str] = {}
        for ol, on, text in self.con.execute(
            f"select layer, neuron, {column} from neurons where atlas = ? and {column} is not null", [a]
        ).fetchall():
            if (ol, on) in others:
                stored[(ol, on)] = text
        for n, ol, on, w in edges:
            label = self._label(pass_, int(ol), int(on), stored)
            if pass_ == "input" and (pass_, int(ol), int(on)) not in self.fresh:
                label = self.fresh.get(("output", int(ol), int(on)), label)
            fact(n)["neighbours"].append(f"L{ol}/N{on} ({'+' if w >= 0 else '-'}{abs(w):.3g}): {label}")
        return facts

    def prompt(self, template: Template, layer: int, neuron: int, facts: dict) -> str:
        f = facts.get(neuron, {})

        def listed(key: str) -> str:
            return ", ".join(f.get(key, [])[:10]) or "(none)"

        return template.text.format(
            model_id=self.atlas.model_id,
            layer=layer,
            num_layers=self.atlas.num_layers,
            neuron=neuron,
            promotes=listed("promotes"),
            suppresses=listed("suppresses"),
            activates=listed("activates"),
            neighbours="; ".join(f.get("neighbours", [])) or "(none)",
            activations=listed("activations"),
            output_label=self.fresh.get(("output", layer, neuron), "(unlabeled)"),
        )


def already_labeled(wh: Warehouse, atlas: str, s: LabelSettings, template: Template) -> set[tuple[int, int]]:
    """Neurons with a committed label of this pass, model and template (any run)."""
    batches = [m.batch for m in lake.markers(wh, atlas, "label") if m.recorded.fact("template") == template.sha]
    if not batches:
        return set()
    rows = lake.read(
        wh,
        "labels",
        ["layer", "neuron"],
        [("atlas", "=", atlas), ("pass", "=", template.pass_), ("labeler_model", "=", s.model), ("batch", "in", batches)],
    )
    return set(zip(rows["layer"].to_pylist(), rows["neuron"].to_pylist(), strict=True))


def _retry_after(error: openai.APIStatusError) -> float | None:
    value = error.response.headers.get("retry-after") if error.response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def judge(pass_: str, content: str | None, refusal: str | None = None) -> tuple[str, dict | None, str | None]:
    """(outcome, the validated answer or None, error) of one reply's message."""
    if refusal:
        return "refused", None, refusal
    try:
        return "ok", ANSWERS[pass_].model_validate_json(content or "").model_dump(), None
    except ValidationError as e:
        return "invalid", None, str(e).splitlines()[0]


def call_row(s: LabelSettings, template: Template, layer: int, neuron: int, attempt: int) -> dict[str, Any]:
    """A `label_calls` row before its outcome is known."""
    return {
        "run": run_name(s),
        "pass": template.pass_,
        "layer": layer,
        "neuron": neuron,
        "model": s.model,
        "template_hash": template.sha,
        "attempt": attempt,
        "tokens_in": 0,
        "tokens_out": 0,
        "error": None,
        "reply": None,
        "latency_ms": None,
        "called_at": datetime.now(UTC),
    }


def _secretless(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


class Caller:
    """One neuron's calls: asks until an answer validates, the attempts run out, or transient errors do."""

    def __init__(self, s: LabelSettings, secret: str | None):
        self.s, self.secret = s, secret
        self.client = openai.OpenAI(api_key=secret or "none", base_url=s.base_url, max_retries=0, timeout=s.timeout)
        self.json_schema = True  # switched off for good when the endpoint refuses schemas

    def _format(self, answer) -> Any:
        if self.json_schema:
            return {"type": "json_schema", "json_schema": {"name": answer.__name__, "schema": answer.model_json_schema(), "strict": False}}
        return {"type": "json_object"}

    def label(self, layer: int, neuron: int, prompt: str, template: Template) -> tuple[dict | None, list[dict]]:
        """(the validated answer or None, the call rows)."""
        calls: list[dict] = []
        invalid = transient = 0
        while invalid < self.s.attempts and transient <= self.s.transient_retries:
            started = time.perf_counter()
            row = call_row(self.s, template, layer, neuron, len(calls) + 1)
            wait, switched, answer = None, False, None
            try:
                response = self.client.chat.completions.create(
                    model=self.s.model,
                    messages=[ChatCompletionUserMessageParam(role="user", content=prompt)],
                    response_format=self._format(ANSWERS[template.pass_]),
                )
                usage = response.usage
                row["tokens_in"], row["tokens_out"] = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
                message = response.choices[0].message
                row["outcome"], answer, row["error"] = judge(template.pass_, message.content, getattr(message, "refusal", None))
                row["reply"] = message.content if row["outcome"] == "invalid" else None
            except openai.RateLimitError as e:
                row["outcome"], row["error"], wait = "rate_limited", "429", _retry_after(e)
            except openai.APITimeoutError:
                row["outcome"], row["error"] = "timeout", f"no answer in {self.s.timeout:g} s"
            except openai.BadRequestError as e:
                if self.json_schema and "response_format" in str(e):
                    self.json_schema, switched = False, True  # ask again in JSON mode; not counted against the neuron
                    row["outcome"], row["error"] = "refused", "endpoint refused json_schema; using JSON mode"
                else:
                    row["outcome"], row["error"] = "error", f"{e.status_code}: {e.message}"
            except openai.APIStatusError as e:
                outcome = "server_error" if e.status_code >= 500 else "error"
                row["outcome"], row["error"], wait = outcome, str(e.status_code), _retry_after(e)
            except openai.APIConnectionError as e:
                row["outcome"], row["error"] = "error", type(e).__name__
            row["latency_ms"] = (time.perf_counter() - started) * 1000
            row["error"] = _secretless(row["error"], self.secret) if row["error"] else None
            calls.append(row)
            if answer is not None:
                return answer, calls
            if row["outcome"] in ("invalid", "refused") and not switched:
                invalid += 1
            elif row["outcome"] in TRANSIENT:
                transient += 1
                time.sleep(wait if wait is not None else self.s.backoff * 2 ** (transient - 1) * random.uniform(0.5, 1.5))
        return None, calls


def _label_row(pass_: str, layer: int, neuron: int, answer: dict, s: LabelSettings) -> dict:
    return {
        "source": run_name(s),
        "pass": pass_,
        "layer": layer,
        "neuron": neuron,
        "label": answer["short_label"],
        "short_label": answer["short_label"],
        "description": answer["function"],
        "type": answer.get("type") or answer.get("input_type"),
        "interpretability": answer["interpretability"],
        "confidence": "llm-auto",
        "labeler_model": s.model,
        "max_activation": None,
        "num_exemplars": None,
        "output_norm": None,
        "source_file": None,
        "record": f"L{layer}/N{neuron}",
    }


class Lander:
    """Gathers labels and calls and commits them as one batch every `commit_every` labels or `commit_seconds`."""

    def __init__(self, wh: Warehouse, atlas: str, s: LabelSettings, template: Template):
        self.wh, self.atlas, self.s, self.template = wh, atlas, s, template
        self.labels: list[dict] = []
        self.calls: list[dict] = []
        self.since = time.monotonic()

    def add(self, label: dict | None, calls: list[dict]) -> None:
        if label:
            self.labels.append(label)
        self.calls += calls
        if len(self.labels) >= self.s.commit_every or time.monotonic() - self.since >= self.s.commit_seconds:
            self.commit()

    def commit(self) -> None:
        if self.calls:
            batch = Batch(
                self.wh,
                self.atlas,
                "label",
                source=run_name(self.s),
                inputs=lake.Inputs.recording(template=self.template.sha, model=self.s.model),
                hashes=[hashlib.sha256(json.dumps(c, default=str).encode()).hexdigest() for c in self.calls],
            )
            batch.add("labels", pa.Table.from_pylist(self.labels, lake.row_schema("labels")))
            batch.add("label_calls", pa.Table.from_pylist(self.calls, lake.row_schema("label_calls")))
            batch.commit(["labels", "label_calls"], set())
        self.labels, self.calls, self.since = [], [], time.monotonic()


def _layers(atlas: registry.AtlasRecord, pass_: str, neurons: list[tuple[int, int]]) -> Iterator[tuple[int, list[int]]]:
    by_layer: dict[int, list[int]] = {}
    for layer, n in neurons:
        by_layer.setdefault(layer, []).append(n)
    for layer in sorted(by_layer, reverse=PASS_ORDER[pass_] < 0):
        yield layer, by_layer[layer]


def plan(wh: Warehouse, atlas: registry.AtlasRecord, pass_: str, s: LabelSettings, ctx: Context) -> list[tuple[int, int]]:
    """The neurons a pass will label, in its layer order, without those already labeled; `limit` applied."""
    template = Template.load(pass_)
    done = already_labeled(wh, atlas.name, s, template)
    todo = [(layer, n) for layer, ns in _layers(atlas, pass_, ctx.neurons(s)) for n in ns if (layer, n) not in done]
    return todo[: s.limit] if s.limit is not None else todo


def dry_run(wh: Warehouse, atlas_name: str, passes: list[str], s: LabelSettings, show: int = 3) -> list[str]:
    """The first prompts of each pass and the estimated tokens and cost of the whole run; calls nothing."""
    atlas = registry.get(wh, atlas_name)
    ctx = Context(wh, atlas)
    lines = []
    try:
        price_in, price_out = _price(s)
        total_in = total_calls = 0
        for pass_ in passes:
            template = Template.load(pass_)
            todo = plan(wh, atlas, pass_, s, ctx)
            prompts = []
            for layer in sorted({layer for layer, _ in todo})[:1] if todo else []:
                facts = ctx.layer_facts(pass_, layer)
                prompts = [ctx.prompt(template, layer, n, facts) for la, n in todo if la == layer][:show]
            per_prompt = max((len(p) // 4 for p in prompts), default=300)  # ~4 characters a token
            total_in += per_prompt * len(todo)
            total_calls += len(todo)
            lines.append(f"pass {pass_}: {len(todo):,} neurons to label (template {template.sha[:12]})")
            lines += [f"--- prompt {i + 1}\n{p}" for i, p in enumerate(prompts)]
        out_tokens = 80 * total_calls
        cost = (total_in * price_in + out_tokens * price_out) / 1e6
        lines.append(
            f"estimate: {total_calls:,} calls, ~{total_in:,} tokens in, ~{out_tokens:,} out, ~${cost:,.2f} at "
            f"${price_in}/${price_out} per 1M tokens ({s.model}{'' if s.price or s.model in PRICES else ': no price known, pass --price'})"
        )
    finally:
        ctx.close()
    return lines


@locks.writes_atlas("label")
def label(wh: Warehouse, atlas_name: str, passes: list[str], s: LabelSettings) -> LabelReport:
    """Run the passes in order (see the module docstring)."""
    atlas = registry.get(wh, atlas_name)
    secret = os.environ.get(s.api_key_env)
    if not secret and not s.base_url:
        raise UserError(f"set {s.api_key_env} (the API key) or --base-url for a local endpoint")
    report = LabelReport()
    caller = Caller(s, secret)
    ctx = Context(wh, atlas)
    price_in, price_out = _price(s)
    try:
        for pass_ in passes:
            template = Template.load(pass_)
            todo = plan(wh, atlas, pass_, s, ctx)
            lander = Lander(wh, atlas.name, s, template)
            with bar() as progress, ThreadPoolExecutor(max(1, s.concurrency)) as pool:
                task = progress.add_task(f"label {pass_} -> {atlas.name}", total=len(todo))
                for layer, neurons in _layers(atlas, pass_, todo):
                    facts = ctx.layer_facts(pass_, layer)
                    jobs = [(n, pool.submit(caller.label, layer, n, ctx.prompt(template, layer, n, facts), template)) for n in neurons]
                    for n, job in jobs:
                        answer, calls = job.result()
                        report.calls += len(calls)
                        report.tokens_in += sum(c["tokens_in"] for c in calls)
                        report.tokens_out += sum(c["tokens_out"] for c in calls)
                        if answer:
                            ctx.fresh[(pass_, layer, n)] = answer["short_label"]
                            report.labeled[pass_] = report.labeled.get(pass_, 0) + 1
                        else:
                            report.failed += 1
                        lander.add(_label_row(pass_, layer, n, answer, s) if answer else None, calls)
                        progress.update(task, advance=1, description=f"label {pass_} -> {atlas.name} ({report.failed} failed)")
                    report.cost = (report.tokens_in * price_in + report.tokens_out * price_out) / 1e6
                    if s.max_cost is not None and report.cost >= s.max_cost:
                        report.stopped_at_cost = True
                        break
            lander.commit()
            if report.stopped_at_cost:
                console.print(f"label: stopped at ${report.cost:.2f} (--max-cost {s.max_cost}); committed work is kept, re-run to go on")
                break
    finally:
        ctx.close()
    return report
