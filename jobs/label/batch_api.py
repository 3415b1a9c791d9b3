"""`circuitlake label --batch-api`: the labeling passes through the OpenAI Batch API, one batch job per layer.

A layer's requests (one chat completion per neuron to label, `custom_id` "<pass>:<layer>:<neuron>") are
uploaded as a JSONL file and submitted as one batch job, in the pass's layer order: a layer is submitted
once the layer before it has landed, so its prompts cite those labels. The submission is recorded in the
lake first (an `ingest_batches` marker, job `label_submit`, naming the batch job) and its collection last
(job `label_collect`), so an invocation that stops while a job runs (`wait_seconds`) or is killed leaves
it to the next invocation, which resumes polling instead of submitting again. Results land like the
synchronous job's (labels and calls, one lake batch per layer); an answer that does not validate is a
failed call, and the next invocation asks for that neuron again.
"""

from __future__ import annotations

import json
import os
import time

from circuitlake import lake, locks, registry
from circuitlake.errors import UserError
from circuitlake.formats.llm_answers import ANSWERS
from circuitlake.jobs.label.client import Caller, call_row, judge
from circuitlake.jobs.label.landing import label_row, landing
from circuitlake.jobs.label.prompts import Context, Template
from circuitlake.jobs.label.run import call_hashes, layers, plan
from circuitlake.jobs.label.settings import LabelReport, LabelSettings, price, run_name
from circuitlake.lake import Batch
from circuitlake.progress import console
from circuitlake.settings import Warehouse

SUBMIT, COLLECT = "label_submit", "label_collect"
TERMINAL = {"completed", "failed", "expired", "cancelled"}


def _jobs(wh: Warehouse, atlas: str, s: LabelSettings, template: Template) -> dict[int, str]:
    """Layer -> batch job id of the jobs submitted for this run, pass and template and not collected yet."""
    submitted: dict[int, str] = {}
    collected = set()
    for m in lake.markers(wh, atlas, source=run_name(s)):
        facts = m.recorded
        if facts.fact("template") != template.sha:
            continue
        if m.job == SUBMIT:
            submitted[int(facts.fact("layer") or -1)] = facts.fact("openai-batch") or ""
        elif m.job == COLLECT:
            collected.add(facts.fact("openai-batch"))
    return {layer: job for layer, job in submitted.items() if job not in collected}


def _mark(wh: Warehouse, atlas: str, s: LabelSettings, job: str, template: Template, batch_job: str, layer: int) -> None:
    """One marker row naming the batch job (the lake's record of a submission or a collection)."""
    inputs = lake.Inputs.recording(openai_batch=batch_job, pass_=template.pass_, layer=layer, template=template.sha)
    Batch(wh, atlas, job, source=run_name(s), inputs=inputs, hashes=[f"{job}:{batch_job}"]).commit([], set())


def _submit(caller: Caller, ctx: Context, template: Template, layer: int, neurons: list[int]) -> str:
    facts = ctx.layer_facts(template.pass_, layer)
    lines = [
        json.dumps(
            {
                "custom_id": f"{template.pass_}:{layer}:{n}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": caller.s.model,
                    "messages": [{"role": "user", "content": ctx.prompt(template, layer, n, facts)}],
                    "response_format": caller._format(ANSWERS[template.pass_]),
                },
            }
        )
        for n in neurons
    ]
    upload = caller.client.files.create(file=("requests.jsonl", "\n".join(lines).encode()), purpose="batch")
    return caller.client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h").id


def _collect(caller: Caller, template: Template, job, lander: lake.Landing, ctx: Context, report: LabelReport) -> None:
    """Land a finished batch job's answers (and its failures) as labels and calls."""
    lines = caller.client.files.content(job.output_file_id).text.splitlines() if job.output_file_id else []
    if job.error_file_id:
        lines += caller.client.files.content(job.error_file_id).text.splitlines()
    for line in filter(None, lines):
        result = json.loads(line)
        pass_, layer, neuron = result["custom_id"].split(":")
        row = call_row(caller.s, template, int(layer), int(neuron), attempt=1)
        response, answer = result.get("response") or {}, None
        body = response.get("body") or {}
        if response.get("status_code") == 200:
            message = body["choices"][0]["message"]
            row["outcome"], answer, row["error"] = judge(pass_, message.get("content"), message.get("refusal"))
            row["reply"] = message.get("content") if row["outcome"] == "invalid" else None
            usage = body.get("usage") or {}
            row["tokens_in"], row["tokens_out"] = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
        else:
            status = response.get("status_code") or 0
            row["outcome"] = "rate_limited" if status == 429 else "server_error" if status >= 500 else "error"
            row["error"] = json.dumps(result.get("error") or body.get("error"))[:500]
        report.calls += 1
        report.tokens_in += row["tokens_in"]
        report.tokens_out += row["tokens_out"]
        if answer:
            ctx.fresh[(pass_, int(layer), int(neuron))] = answer["short_label"]
            report.labeled[pass_] = report.labeled.get(pass_, 0) + 1
        else:
            report.failed += 1
        lander.add(
            call_hashes([row]), labels=[label_row(pass_, int(layer), int(neuron), answer, caller.s)] if answer else [], label_calls=[row]
        )
    lander.commit()


@locks.writes_atlas("label")
def label_with_batches(
    wh: Warehouse, atlas_name: str, passes: list[str], s: LabelSettings, poll_seconds: float = 30.0, wait_seconds: float | None = None
) -> LabelReport:
    """Run the passes through the Batch API (see the module docstring); stops, leaving the running job to
    the next invocation, once a job has been waited on for `wait_seconds`."""
    atlas = registry.get(wh, atlas_name)
    secret = os.environ.get(s.api_key_env)
    if not secret and not s.base_url:
        raise UserError(f"set {s.api_key_env} (the API key) or --base-url for a local endpoint")
    report, caller, ctx = LabelReport(), Caller(s, secret), Context(wh, atlas)
    try:
        for pass_ in passes:
            template = Template.load(pass_)
            running = _jobs(wh, atlas.name, s, template)
            for layer, neurons in layers(atlas, pass_, plan(wh, atlas, pass_, s, ctx)):
                job_id = running.get(layer)
                if job_id is None:
                    job_id = _submit(caller, ctx, template, layer, neurons)
                    _mark(wh, atlas.name, s, SUBMIT, template, job_id, layer)
                    console.print(f"label {pass_}: layer {layer}: {len(neurons)} requests submitted as batch job {job_id}")
                started = time.monotonic()
                job = caller.client.batches.retrieve(job_id)
                while job.status not in TERMINAL:
                    if wait_seconds is not None and time.monotonic() - started >= wait_seconds:
                        console.print(f"label {pass_}: batch job {job_id} (layer {layer}) is {job.status}; run again to resume")
                        return report
                    time.sleep(poll_seconds)
                    job = caller.client.batches.retrieve(job_id)
                _collect(caller, template, job, landing(wh, atlas.name, s, template), ctx, report)
                _mark(wh, atlas.name, s, COLLECT, template, job_id, layer)
        price_in, price_out = price(s)
        report.cost = (report.tokens_in * price_in + report.tokens_out * price_out) / 1e6 / 2  # the Batch API bills half
    finally:
        ctx.close()
    return report
