"""Exploring a built atlas: full-text and semantic label search, the neuron card, the Python API."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import ARTIFACTS, DEMO_SPEC, chromium, cli
from PIL import Image

import circuitlake
from circuitlake import duck, registry, search
from circuitlake.app.build import build
from circuitlake.app.html_report import PLOTS
from circuitlake.app.sample import SAMPLE_ATLAS, topic_of
from circuitlake.jobs import search_index
from circuitlake.settings import REPO_ROOT

SECRET = "sk-test-never-stored-0123456789"


def aspirin_members() -> set[tuple[int, int]]:
    return {key for key, topic in topic_of(DEMO_SPEC).items() if topic == "aspirin dosing"}


def test_full_text_search_finds_the_planted_aspirin_circuit_and_beats_ilike(demo_wh):
    members = aspirin_members()
    with circuitlake.open(demo_wh.root) as atlas:
        # the sample labels the planted members "aspirin dosing ..."; other neurons may carry " aspirin" or " dose"
        labeled = set(
            atlas.sql(
                "select layer, neuron from neurons where atlas = 'sample' "
                "and concat_ws(' ', label, output_label, input_label, description) ilike '%aspirin dosing%'"
            ).fetchall()
        )
        assert labeled and labeled <= members
        assert atlas.sql("select count(*) from neurons where atlas = 'sample' and label ilike '%aspirin%'").fetchone()[0] > len(labeled)
        for query in ("aspirin dosing", "aspirin doses", "aspirins dosed", "DOSING of Aspirin"):
            found = [(r[0], r[1]) for r in atlas.search(query, limit=len(labeled)).fetchall()]
            # the top hits are exactly the planted circuit's labeled members, above neurons matching one word
            assert set(found) == labeled, query
        # ILIKE (what the research lab used) misses the inflected and reordered queries
        for query in ("aspirin doses", "aspirins dosed", "dosing of aspirin"):
            ilike = atlas.sql("select count(*) from neurons where atlas = 'sample' and label ilike $1", [f"%{query}%"]).fetchone()
            assert ilike == (0,), query
        ranked = atlas.search("aspirin dosing", limit=len(labeled) + 5).df()
        assert ranked["score"].is_monotonic_decreasing and len(ranked) == len(labeled) + 5
    found = cli("search", "aspirin dosing", "--limit", "5", wh=demo_wh.root)
    assert found.returncode == 0 and "aspirin dosing" in found.stdout
    lines = cli("search", "aspirin dose", "--json", "--limit", "3", wh=demo_wh.root).stdout.splitlines()
    assert [tuple(json.loads(x)[k] for k in ("layer", "neuron")) in members for x in lines] == [True] * 3
    nothing = cli("search", "zebra xylophone", wh=demo_wh.root)
    assert nothing.returncode == 1 and "zebra" in nothing.stdout


def test_neuron_card_in_every_key_spelling(demo_wh):
    member = sorted(aspirin_members())[3]
    layer, n = member
    cards = [
        json.loads(cli("neuron", key, "--json", "--top", "5", wh=demo_wh.root).stdout)
        for key in (f"L{layer}/N{n}", f"{layer}_{n}", str(layer * DEMO_SPEC.neurons_per_layer + n))
    ]
    assert cards[0] == cards[1] == cards[2]
    card = cards[0]
    assert (card["layer"], card["neuron"]) == member and card["neuron_row"]["appearance_count"] > 0
    assert {(x["source"], x["pass"]) for x in card["labels"]} >= {("enriched", "output")} or len(card["labels"]) >= 2
    assert all("aspirin" in x["label"] for x in card["labels"] if x["pass"] in ("output", "autointerp") and x["label"])
    for side in ("downstream", "upstream"):
        weights = [e["mean_abs_weight"] for e in card[side]]
        assert weights == sorted(weights, reverse=True) and len(weights) <= 5
    assert card["downstream"] or card["upstream"]
    assert all(e["layer"] > layer for e in card["downstream"]) and all(e["layer"] < layer for e in card["upstream"])
    path = card["neuron_row"]["cluster_path"]
    module = path.rsplit(".", 1)[0]
    assert card["module"] and all(m["cluster_path"].startswith(module + ".") for m in card["module"])
    influences = [g["max_abs_influence"] for g in card["graphs"]]
    assert influences == sorted(influences, reverse=True) and all(g["prompt"] for g in card["graphs"])
    assert {p["kind"] for p in card["projections"]} >= {"promotes", "suppresses"}
    shown = cli("neuron", f"L{layer}/N{n}", wh=demo_wh.root)
    for title in ("labels (every source and pass)", "strongest downstream edges", "other members of its module", "output projections"):
        assert title in shown.stdout, title
    bad = cli("neuron", f"L{DEMO_SPEC.layers}/N0", wh=demo_wh.root)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "outside the atlas shape" in bad.stderr


def test_python_api_relations(demo_wh):
    with circuitlake.open(demo_wh.root) as atlas:  # the only atlas: no name needed
        assert atlas.name == SAMPLE_ATLAS and atlas.method == "relp"
        top = atlas.top_circuits(3).df()
        assert len(top) == 3 and top["size"].is_monotonic_decreasing and all(len(x) > 0 for x in top["sample_labels"])
        first = int(top["top_cluster"][0])
        rows = atlas.circuit(first).fetchall()  # layer, neuron, label, output_label, input_label, path, appearances, flow
        members = {(r[0], r[1]) for r in rows}
        assert len(members) == top["size"][0]
        most_seen = sorted((r for r in rows if r[2] or r[3] or r[4]), key=lambda r: (-r[6], r[0], r[1]))[:5]
        assert list(top["sample_labels"][0]) == [r[2] or r[3] or r[4] for r in most_seen]  # the most seen members' labels
        inside = atlas.edges_within(first).arrow().read_all()  # .arrow() streams record batches
        assert inside.num_rows > 0
        for src in zip(inside["src_layer"].to_pylist(), inside["src_neuron"].to_pylist(), strict=True):
            assert src in members
        neuron = atlas.neuron(*next(iter(members)))
        down = neuron.downstream(3).df()
        assert len(down) <= 3 and list(down.columns[:2]) == ["layer", "neuron"]
        assert atlas.metadata()["model_id"] == "circuitlake/sample-8x512"
        with pytest.raises(circuitlake.atlas.UserError, match="outside the atlas shape"):
            atlas.neuron(99, 0)


def test_readme_python_example_runs(demo_wh):
    """The README's notebook-style example, run as written against the demo warehouse."""
    readme = (REPO_ROOT / "README.md").read_text()
    code = re.search(r"<!-- python-api-example -->\s*```python\n(.*?)```", readme, re.S)
    assert code, "README has no python-api-example block"
    source = code[1].replace('"warehouse"', repr(str(demo_wh.root)))
    namespace: dict = {}
    exec(compile(source, "README.md", "exec"), namespace)  # noqa: S102 (the README's own example)
    namespace["atlas"].close()


def test_build_reindexes_only_the_atlases_whose_labels_changed(wh, tmp_path):
    for name in ("one", "two"):
        registry.add(wh, registry.AtlasRecord(atlas=name, model_id="m", num_layers=2, neurons_per_layer=4))
    labels = tmp_path / "labels"
    labels.mkdir()

    def write(name: str, text: str) -> Path:
        path = labels / f"{name}.json"
        path.write_text(json.dumps({"L0/N1": {"label": text}, "L1/N2": {"label": "commas in lists"}}))
        return path

    assert cli("ingest", "labels", str(write("one", "french negation")), "--atlas", "one", "--source", "s", wh=wh.root).returncode == 0
    assert cli("ingest", "labels", str(write("two", "plural nouns")), "--atlas", "two", "--source", "s", wh=wh.root).returncode == 0
    build(wh)
    assert {b.atlas for b in search_index.refresh(wh)} == set()  # the build indexed both; nothing changed since
    assert cli("ingest", "labels", str(write("one", "negated french verbs")), "--atlas", "one", "--source", "s", wh=wh.root).returncode == 0
    build(wh)
    with circuitlake.open(wh.root, "one") as one:
        assert [r[:2] for r in one.search("negation").fetchall()] == [(0, 1)]  # stems: negated ~ negation
        built = dict(one.sql("select atlas, built_at from search.indexes where kind = 'fts'").fetchall())
    with circuitlake.open(wh.root, "two") as two:
        assert [r[:2] for r in two.search("noun").fetchall()] == [(0, 1)]
    assert built["one"] > built["two"]  # only the atlas whose labels changed was indexed again
    folders = sorted(p.name.rsplit("-", 1)[0] for p in (wh.root / search.SCHEMA).iterdir())
    assert folders == sorted(search.slug(a) for a in ("one", "two"))  # the replaced index removed, nothing partial left
    several = cli("search", "noun", wh=wh.root)
    assert several.returncode == 2 and "--atlas" in several.stderr
    for folder in (wh.root / search.SCHEMA).glob(f"{search.slug('two')}-*"):
        shutil.rmtree(folder)  # as a warehouse indexed by an older circuitlake (DuckDB fts) has no folder
    lost = cli("search", "noun", "--atlas", "two", wh=wh.root)
    assert lost.returncode != 0 and "circuitlake build" in lost.stderr and len(lost.stderr.strip().splitlines()) == 1
    assert [b.atlas for b in search_index.refresh(wh)] == ["two"]
    with circuitlake.open(wh.root, "two") as two:
        assert [r[:2] for r in two.search("noun").fetchall()] == [(0, 1)]


# --- semantic search against a local OpenAI-compatible embeddings server ---

SYNONYMS = {"painkiller": "aspirin", "analgesic": "aspirin", "doses": "dosing", "dosage": "dosing", "dose": "dosing"}


def concept_vector(text: str, dims: int) -> np.ndarray:
    """Deterministic 'meaning': each word (synonyms folded) is a fixed random direction; a text is their sum."""
    total = np.zeros(dims)
    for word in re.findall(r"[a-z]+", text.lower()):
        word = SYNONYMS.get(word, word)
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        total += np.random.default_rng(seed).standard_normal(dims)
    norm = np.linalg.norm(total)
    return total / norm if norm else total


class EmbeddingsServer:
    """POST /v1/embeddings: concept vectors, float lists or base64 float32 as asked; counts requests."""

    def __init__(self):
        self.requests: list[dict] = []
        self.auth: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                server.requests.append(body)
                server.auth.add(self.headers.get("authorization", ""))
                texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                data = []
                for i, text in enumerate(texts):
                    v = concept_vector(text, body.get("dimensions") or 16).astype("<f4")
                    emb = base64.b64encode(v.tobytes()).decode() if body.get("encoding_format") == "base64" else v.tolist()
                    data.append({"object": "embedding", "index": i, "embedding": emb})
                payload = json.dumps(
                    {
                        "object": "list",
                        "data": data,
                        "model": body["model"],
                        "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_semantic_search_finds_aspirin_neurons_by_a_synonym(demo_wh, monkeypatch):
    wh = demo_wh  # adds embeddings to the demo lake (and rebuilds): nothing the other tests read changes
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    server = EmbeddingsServer()
    try:
        embed = ("embed", "--base-url", server.url, "--dimensions", "32", "--model", "concept-32", "--batch-size", "500")
        first = cli(*embed, "--limit", "700", wh=wh.root)
        assert first.returncode == 0, first.stderr
        assert "700 neurons embedded" in first.stderr
        rest = cli(*embed, wh=wh.root)  # resumes: only the neurons without a vector yet
        assert rest.returncode == 0, rest.stderr
        con = duck.load(duck.connect(wh, read_only=True), "delta")
        labeled = duck.scalar(con, "select count(*) from neurons where coalesce(label, output_label, input_label, description) is not null")
        con.close()
        assert sum(len(r["input"]) for r in server.requests) == labeled
        assert f"{labeled - 700:,} neurons embedded" in rest.stderr
        again = cli(*embed, wh=wh.root)
        assert "0 neurons embedded" in again.stderr and sum(len(r["input"]) for r in server.requests) == labeled
        assert {r["dimensions"] for r in server.requests} == {32} and server.auth == {f"Bearer {SECRET}"}

        build(wh)
        members = aspirin_members()
        with circuitlake.open(wh.root) as atlas:
            assert atlas.search("painkiller dosage").fetchall() == []  # no label has these words: BM25 finds nothing
            hits = atlas.search("painkiller dosage", limit=10, semantic=True, base_url=server.url).fetchall()
            assert len(hits) == 10 and {(r[0], r[1]) for r in hits} <= members
            published = atlas.sql(f"select typeof(embedding) from {search.embeddings_table('sample')} limit 1").fetchone()
            assert published == ("FLOAT[32]",)
        shown = cli("search", "analgesic dose", "--semantic", "--base-url", server.url, "--limit", "3", wh=wh.root)
        assert shown.returncode == 0 and shown.stdout.count("aspirin dosing") == 3
    finally:
        server.close()
    # the key went to the server, never into the warehouse
    for path in wh.root.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


# --- the HTML atlas report, opened by a real browser ---


def test_html_report_renders_offline_with_every_plot(demo_wh, tmp_path):
    browser = chromium()
    page = tmp_path / "atlas.html"
    written = cli("report", "--html", str(page), wh=demo_wh.root)
    assert written.returncode == 0, written.stderr
    text = page.read_text()
    assert "Content-Security-Policy" in text and "18 of 18 passed" in text
    assert not re.search(r"""(src|href|url)\s*[=(]\s*["']?(https?:)?//""", text)  # nothing to fetch
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for plot in PLOTS:  # each plot rendered as inline SVG inside its figure
        assert re.search(rf'<figure id="{plot}"><svg[^>]*>.*?</svg>', dom.stdout, re.S), plot
    assert "aspirin dosing" in dom.stdout or "members' labels" in dom.stdout
    problems = [line for line in dom.stderr.splitlines() if "net::ERR" in line or "Refused to" in line or "CONSOLE" in line]
    assert problems == []  # no network request, no blocked load, no script error
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "atlas_report.png"
    taken = subprocess.run([*flags, "--window-size=1280,5200", f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    assert taken.returncode == 0 and shot.exists()
    with Image.open(shot) as image:
        colors = image.convert("RGB").resize((320, 1300)).getcolors(maxcolors=1 << 16) or []
    assert image.size == (1280, 5200) and len(colors) > 50  # drawn plots, not a blank page
