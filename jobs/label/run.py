"""`circuitlake label`: the passes in order, each a layer at a time, calls in parallel.

Pass `output` (what the neuron does) walks layers last -> first and pass `input` (what triggers it) first
-> last, so a prompt cites neighbours labeled earlier, in this run or before. Results commit every
`commit_every` calls or `commit_seconds` (labels and calls in one batch), so an interruption loses at
most that interval, and a re-run skips the neurons already labeled for the same pass, model and template.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from circuitlake import locks, registry
from circuitlake.errors import UserError
from circuitlake.jobs.label.client import Caller
from circuitlake.jobs.label.landing import already_labeled, label_row, landing
from circuitlake.jobs.label.prompts import Context, Template
from circuitlake.jobs.label.settings import PRICES, LabelReport, LabelSettings, price
from circuitlake.progress import bar, console
from circuitlake.settings import Warehouse

PASS_ORDER = {"output": -1, "input": 1}  # layer order: output walks down from the last layer, input up


def call_hashes(calls: list[dict]) -> list[str]:
    """A call row's content hash: what a batch of calls landed."""
    return [hashlib.sha256(json.dumps(c, default=str).encode()).hexdigest() for c in calls]


def layers(atlas: registry.AtlasRecord, pass_: str, neurons: list[tuple[int, int]]) -> Iterator[tuple[int, list[int]]]:
    by_layer: dict[int, list[int]] = {}
    for layer, n in neurons:
        by_layer.setdefault(layer, []).append(n)
    for layer in sorted(by_layer, reverse=PASS_ORDER[pass_] < 0):
        yield layer, by_layer[layer]


def plan(wh: Warehouse, atlas: registry.AtlasRecord, pass_: str, s: LabelSettings, ctx: Context) -> list[tuple[int, int]]:
    """The neurons a pass will label, in its layer order, without those already labeled; `limit` applied."""
    template = Template.load(pass_)
    done = already_labeled(wh, atlas.name, s, template)
    todo = [(layer, n) for layer, ns in layers(atlas, pass_, ctx.neurons(s)) for n in ns if (layer, n) not in done]
    return todo[: s.limit] if s.limit is not None else todo


def dry_run(wh: Warehouse, atlas_name: str, passes: list[str], s: LabelSettings, show: int = 3) -> list[str]:
    """The first prompts of each pass and the estimated tokens and cost of the whole run; calls nothing."""
    atlas = registry.get(wh, atlas_name)
    ctx = Context(wh, atlas)
    lines = []
    try:
        price_in, price_out = price(s)
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
    price_in, price_out = price(s)
    try:
        for pass_ in passes:
            template = Template.load(pass_)
            todo = plan(wh, atlas, pass_, s, ctx)
            lander = landing(wh, atlas.name, s, template)
            with bar() as progress, ThreadPoolExecutor(max(1, s.concurrency)) as pool:
                task = progress.add_task(f"label {pass_} -> {atlas.name}", total=len(todo))
                for layer, neurons in layers(atlas, pass_, todo):
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
                        lander.add(call_hashes(calls), labels=[label_row(pass_, layer, n, answer, s)] if answer else [], label_calls=calls)
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
