"""The labeling job against a scripted OpenAI-compatible server on 127.0.0.1, through the real `openai` client:
throttling, garbled and never-valid answers, server errors; both passes in layer order; labels in the lake
and in `neurons` after a build; every call accounted for; a re-run labels nothing twice; no secret stored."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import pytest
from conftest import cli, tiny_graph, write_graph

from circuitlake import lake, registry
from circuitlake.app.build import build
from circuitlake.app.report import run_audits
from circuitlake.ingest.graphs import ingest_graphs
from circuitlake.jobs.label import LabelSettings, dry_run, label, label_with_batches

SECRET = "sk-test-very-secret-4242"
NEURON = re.compile(r"\(layer (\d+) of \d+, neuron (\d+)\)")


class Server:
    """Answers chat completions per (pass, layer, neuron) from a script of replies, else validly; also the
    Batch API (files, batches): a batch job completes after `polls` status checks."""

    def __init__(self, script: dict, polls: int = 0):
        self.script = {k: list(v) for k, v in script.items()}
        self.prompts: list[tuple[str, int, int, str]] = []
        self.keys: set[str] = set()
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.polls = polls
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status: int, payload, raw: bytes | None = None, headers: dict | None = None):
                data = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                for k, v in {"content-type": "application/json", "content-length": str(len(data)), **(headers or {})}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                server.keys.add(self.headers.get("authorization", ""))
                raw = self.rfile.read(int(self.headers["content-length"]))
                if self.path.endswith("/files"):  # multipart: the JSONL is the part named "file"
                    boundary = self.headers["content-type"].split("boundary=")[1].encode()
                    part = next(p for p in raw.split(b"--" + boundary) if b'name="file"' in p)
                    content = part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
                    fid = f"file-{len(server.files)}"
                    server.files[fid] = content
                    return self.reply(
                        200,
                        {
                            "id": fid,
                            "object": "file",
                            "bytes": len(content),
                            "created_at": 0,
                            "filename": "requests.jsonl",
                            "purpose": "batch",
                            "status": "processed",
                        },
                    )
                body = json.loads(raw)
                if self.path.endswith("/batches"):
                    results = []
                    for line in server.files[body["input_file_id"]].decode().splitlines():
                        request = json.loads(line)
                        status, payload = server.chat(request["body"])
                        results.append(
                            json.dumps(
                                {
                                    "id": "r",
                                    "custom_id": request["custom_id"],
                                    "error": None,
                                    "response": {"status_code": status, "request_id": "q", "body": payload},
                                }
                            )
                        )
                    out = f"file-{len(server.files)}"
                    server.files[out] = "\n".join(results).encode()
                    bid = f"batch_{len(server.batches)}"
                    server.batches[bid] = {
                        "id": bid,
                        "object": "batch",
                        "endpoint": body["endpoint"],
                        "input_file_id": body["input_file_id"],
                        "completion_window": "24h",
                        "status": "in_progress",
                        "output_file_id": None,
                        "error_file_id": None,
                        "created_at": 0,
                        "polls": 0,
                        "out": out,
                    }
                    return self.reply(200, {k: v for k, v in server.batches[bid].items() if k not in ("polls", "out")})
                status, payload = server.chat(body)
                self.reply(status, payload, headers={"retry-after": "0"} if status != 200 else None)

            def do_GET(self):
                parts = self.path.strip("/").split("/")
                if parts[-1] == "content":
                    return self.reply(200, None, raw=server.files[parts[-2]], headers={"content-type": "application/octet-stream"})
                batch = server.batches[parts[-1]]
                batch["polls"] += 1
                if batch["polls"] > server.polls:
                    batch["status"], batch["output_file_id"] = "completed", batch["out"]
                self.reply(200, {k: v for k, v in batch.items() if k not in ("polls", "out")})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def chat(self, body: dict) -> tuple[int, dict]:
        prompt = body["messages"][0]["content"]
        pass_ = "output" if "what the neuron does" in prompt else "input"
        layer, neuron = map(int, NEURON.search(prompt).groups())
        with self.lock:
            self.prompts.append((pass_, layer, neuron, prompt))
            queue = self.script.get((pass_, layer, neuron), [])
            reply = queue.pop(0) if queue and queue[0] != "never" else (queue[0] if queue else "ok")
        if reply in ("429", "500"):
            return int(reply), {"error": {"message": "busy", "type": "x"}}
        kind = {"output": '"type": "semantic"', "input": '"input_type": "context"'}[pass_]
        content = (
            (f'{{"short_label": "{pass_} of L{layer} N{neuron}", "function": "It does things.", {kind}, "interpretability": "high"}}')
            if reply == "ok"
            else '{"short_label": "two words"'
        )
        return 200, {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": 30, "total_tokens": len(prompt) // 4 + 30},
        }

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def tiny(wh, tmp_path, monkeypatch):
    """A built 4 x 8 atlas whose only published edge is L0/N5 -> L3/N7."""
    registry.add(wh, registry.AtlasRecord(atlas="tiny", model_id="test/4x8", num_layers=4, neurons_per_layer=8))
    folder = tmp_path / "graphs"
    folder.mkdir()
    for i in range(3):
        write_graph(folder / f"g{i}.json", tiny_graph(prompt=f"p{i}"))
    ingest_graphs(wh, "tiny", [str(folder)], show_progress=False)
    build(wh, cluster=False)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    return "tiny"


def test_both_passes_label_every_neuron_through_throttling_and_garbling(wh, tiny):
    script = {
        ("output", 3, 7): ["429", "garbled", "ok"],
        ("output", 2, 1): ["500", "ok"],
        ("output", 1, 1): ["never"],
        ("input", 0, 5): ["garbled", "ok"],
    }
    server = Server(script)
    settings = LabelSettings(model="gpt-5-mini", base_url=server.url, concurrency=4, backoff=0.01, commit_every=5)
    try:
        report = label(wh, tiny, ["output", "input"], settings)
    finally:
        server.close()
    assert report.labeled == {"output": 31, "input": 32} and report.failed == 1
    assert server.keys == {f"Bearer {SECRET}"}

    # pass 1 walks down: L0/N5's prompt cites the label L3/N7 got earlier in the same run
    prompts = {(p, layer, n): text for p, layer, n, text in server.prompts}
    assert "L3/N7 (+" in prompts[("output", 0, 5)] and "output of L3 N7" in prompts[("output", 0, 5)]
    order = [layer for p, layer, _, _ in server.prompts if p == "output"]
    assert order == sorted(order, reverse=True)
    # pass 2 walks up and cites pass 1
    assert "output of L3 N7" in prompts[("input", 3, 7)] and "L0/N5 (+" in prompts[("input", 3, 7)]

    calls = lake.read(wh, "label_calls").to_pylist()
    outcomes = [
        (c["pass"], c["layer"], c["neuron"], c["outcome"])
        for c in sorted(calls, key=lambda c: (c["pass"], c["layer"], c["neuron"], c["attempt"]))
    ]
    assert [o[3] for o in outcomes if o[:3] == ("output", 3, 7)] == ["rate_limited", "invalid", "ok"]
    assert [o[3] for o in outcomes if o[:3] == ("output", 2, 1)] == ["server_error", "ok"]
    never = [c for c in calls if (c["pass"], c["layer"], c["neuron"]) == ("output", 1, 1)]
    assert [c["outcome"] for c in never] == ["invalid"] * 3 and never[0]["reply"] == '{"short_label": "two words"'
    labels = lake.read(wh, "labels", filters=[("atlas", "=", "tiny")]).to_pylist()
    assert len(labels) == 63 and not [x for x in labels if (x["pass"], x["layer"], x["neuron"]) == ("output", 1, 1)]
    assert {x["source"] for x in labels} == {"label-gpt-5-mini"} and {x["labeler_model"] for x in labels} == {"gpt-5-mini"}

    # published after a build; coverage follows
    build(wh, cluster=False)
    con = duckdb.connect(str(wh.duckdb), read_only=True)
    labeled, outputs, inputs = con.execute(
        "select count(label), count(output_label), count(input_label) from neurons where atlas = 'tiny'"
    ).fetchone()
    con.close()
    assert (labeled, outputs, inputs) == (31, 31, 32)  # `label` takes the output pass: L1/N1 has none

    # the audit report's labeling section
    figures = {f["figure"]: f["value"] for f in run_audits(wh).figures if f["atlas"] == "tiny"}
    run_ = "labeling label-gpt-5-mini"
    assert figures[f"{run_}: calls (ok / all), tokens in / out"].startswith(f"63 / {len(calls)}, ")
    assert figures[f"{run_}: failed calls by outcome"] == "invalid 5, rate_limited 1, server_error 1"
    assert float(figures[f"{run_}: estimated cost (USD)"]) > 0
    assert figures[f"{run_} / output: parsing issues (neurons never validated)"] == "3.12%"  # 1 of 32
    assert figures[f"{run_} / input: parsing issues (neurons never validated)"] == "0.00%"
    assert figures[f"{run_} / output: interpretability high / medium / low"] == "100.0% / 0.0% / 0.0%"
    assert figures[f"{run_} / input: types"] == "context 100.0%"
    assert figures[f"{run_} / output: label uniqueness"] == "100.0%"

    # a re-run asks nothing for what is labeled: only the never-valid neuron again
    server = Server({("output", 1, 1): ["ok"]})
    try:
        again = label(wh, tiny, ["output", "input"], LabelSettings(base_url=server.url, backoff=0.01))
    finally:
        server.close()
    assert again.labeled == {"output": 1} and [(p, layer, n) for p, layer, n, _ in server.prompts] == [("output", 1, 1)]

    # the key is nowhere on disk
    found = subprocess.run(["grep", "-rl", SECRET, str(wh.root)], capture_output=True, text=True)
    assert found.stdout == ""


def test_dry_run_calls_nothing_and_cli_needs_a_key(wh, tiny, monkeypatch):
    server = Server({})
    try:
        lines = dry_run(wh, tiny, ["output", "input"], LabelSettings(base_url=server.url))
    finally:
        server.close()
    assert server.prompts == [] and "32 neurons to label" in lines[0] and lines[-1].startswith("estimate: 64 calls")
    monkeypatch.delenv("OPENAI_API_KEY")
    missing = cli("label", "--atlas", "tiny", wh=wh.root)
    assert missing.returncode == 2 and "OPENAI_API_KEY" in missing.stderr
    dry = cli("label", "--atlas", "tiny", "--pass", "output", "--dry-run", "--limit", "2", wh=wh.root)
    assert dry.returncode == 0 and "2 neurons to label" in dry.stdout and "--- prompt 1" in dry.stdout


def test_killed_run_resumes_without_relabeling_committed_neurons(wh, tiny):
    import os
    import signal
    import sys
    import time

    server = Server({})
    code = (
        "from circuitlake.settings import warehouse; from circuitlake.jobs.label import LabelSettings, label\n"
        f"label(warehouse({str(wh.root)!r}), 'tiny', ['output', 'input'], "
        f"LabelSettings(base_url={server.url!r}, concurrency=1, commit_every=4, commit_seconds=3600))\n"
    )
    try:
        proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ}, stderr=subprocess.DEVNULL)
        while len(server.prompts) < 14 and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        batches = list(lake.committed_batches(wh, "tiny", "label"))  # a batch killed before its marker does not count
        committed = lake.read(wh, "labels", ["layer"], [("atlas", "=", "tiny"), ("batch", "in", batches)]).to_pylist()
        assert 4 <= len(committed) < 64 and len(committed) % 4 == 0  # whole commits only
        asked_before = len(server.prompts)
        again = label(wh, tiny, ["output", "input"], LabelSettings(base_url=server.url, backoff=0.01))
    finally:
        server.close()
    labels = lake.read(wh, "labels", ["pass", "layer", "neuron"], [("atlas", "=", "tiny")]).to_pylist()
    keys = [(x["pass"], x["layer"], x["neuron"]) for x in labels]
    assert len(keys) == len(set(keys)) == 64  # every neuron once per pass
    assert sum(again.labeled.values()) == 64 - len(committed) == len(server.prompts) - asked_before


def test_atlas_from_a_tiny_model_with_computed_wiring_is_labeled_in_both_passes(wh, tmp_path, monkeypatch):
    """The issue's acceptance: a from_config model, wiring computed, a throttling and garbling server."""
    from circuitlake.ingest.wiring_compute import compute_wiring, tiny_model

    folder = tmp_path / "model"
    tiny_model("llama", 3, 8, hidden=16, vocab=50, seed=2).save_pretrained(folder)
    registry.add(wh, registry.AtlasRecord(atlas="model", model_id="tiny-llama", num_layers=3, neurons_per_layer=8))
    compute_wiring(wh, "model", folder, top_k=3, show_progress=False)
    build(wh, cluster=False)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    server = Server({("output", 2, 0): ["429", "ok"], ("output", 1, 3): ["garbled", "ok"], ("input", 0, 7): ["500", "garbled", "ok"]})
    try:
        report = label(wh, "model", ["output", "input"], LabelSettings(base_url=server.url, backoff=0.01))
    finally:
        server.close()
    assert report.labeled == {"output": 24, "input": 24} and report.failed == 0
    prompts = {(p, layer, n): text for p, layer, n, text in server.prompts}
    # projections (token ids: the tiny model has no tokenizer) and weight-graph neighbours with their labels
    assert "Tokens its output direction promotes: (none)" not in prompts[("output", 1, 3)]
    assert re.search(r"L2/N\d \([+-][\d.e-]+\): output of L2 N\d", prompts[("output", 1, 3)])
    assert re.search(r"L0/N\d \([+-][\d.e-]+\): input of L0 N\d", prompts[("input", 1, 3)])
    build(wh, cluster=False)
    con = duckdb.connect(str(wh.duckdb), read_only=True)
    counts = con.execute("select count(label), count(output_label), count(input_label) from neurons where atlas = 'model'").fetchone()
    con.close()
    assert counts == (24, 24, 24)


def test_batch_api_submits_a_layer_at_a_time_and_a_rerun_resumes_polling(wh, tiny):
    server = Server({("output", 2, 3): ["garbled"]}, polls=2)
    settings = LabelSettings(base_url=server.url)
    try:
        first = label_with_batches(wh, tiny, ["output", "input"], settings, poll_seconds=0.01, wait_seconds=0)
        assert len(server.batches) == 1 and first.labeled == {}  # layer 3 submitted, still running: stopped
        done = label_with_batches(wh, tiny, ["output", "input"], settings, poll_seconds=0.01)
    finally:
        server.close()
    assert len(server.batches) == 8  # the running job was polled again, not resubmitted: 4 layers x 2 passes
    assert done.labeled == {"output": 31, "input": 32} and done.failed == 1
    # layer order kept: pass 1 prompts of layer 0 cite the label layer 3 got from its batch job
    prompts = {(p, layer, n): text for p, layer, n, text in server.prompts}
    assert "output of L3 N7" in prompts[("output", 0, 5)]
    calls = lake.read(wh, "label_calls", filters=[("atlas", "=", "tiny")]).to_pylist()
    assert [c["outcome"] for c in calls if (c["pass"], c["layer"], c["neuron"]) == ("output", 2, 3)] == ["invalid"]
    assert len(lake.read(wh, "labels", filters=[("atlas", "=", "tiny")])) == 63
