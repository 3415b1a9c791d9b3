"""One neuron's LLM calls: the OpenAI-compatible client, the answer check and the retry policy.

An answer must validate against `circuitlake/formats/llm_answers.py`; one that never does (after
`attempts` tries) is a failure, with its raw reply, never a label. 429 and 5xx back off with jitter,
honouring `retry-after`. The API key never reaches a call row or an error text.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import Any

import openai
from openai.types.chat import ChatCompletionUserMessageParam
from pydantic import ValidationError

from circuitlake.formats.llm_answers import ANSWERS
from circuitlake.jobs.label.prompts import Template
from circuitlake.jobs.label.settings import LabelSettings, run_name

TRANSIENT = {"rate_limited", "server_error", "timeout", "error"}


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
