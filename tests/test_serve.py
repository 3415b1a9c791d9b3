"""`circuitlake serve` and `circuitlake diff`: the explorer's JSON API, a walk through its pages in headless
Chromium (search -> neuron -> neighbour -> circuit -> graph, nothing fetched from outside 127.0.0.1, no
console error; screenshots in .cache/test-artifacts), a build that runs while it serves, and the diff of
two builds (table, --json, the explorer's page)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
from conftest import ARTIFACTS, chromium, cli, system_binary
from test_cli import CLI

from circuitlake import duck
from circuitlake.app.sample import SampleSpec, write_labels


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, dict | list | str]:
    """Status and body (JSON when it is JSON) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            status, body, kind = r.status, r.read().decode(), r.headers.get("content-type", "")
    except urllib.error.HTTPError as e:
        status, body, kind = e.code, e.read().decode(), e.headers.get("content-type", "")
    return status, json.loads(body) if "json" in kind else body


@contextmanager
def serving(wh_root: Path, *extra: str) -> Iterator[str]:
    """`circuitlake serve` in a subprocess; yields its base URL once it answers."""
    port = free_port()
    proc = subprocess.Popen([CLI, "--warehouse", str(wh_root), "serve", "--port", str(port), *extra], stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(f"{url}/api/atlases")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the explorer did not start"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_api_answers_every_key_spelling_and_refuses_in_one_line(demo_wh):
    with serving(demo_wh.root) as url:
        status, found = get(f"{url}/api/search?q=aspirin%20dosing&atlas=sample&limit=5")
        assert status == 200 and found["mode"] == "bm25" and len(found["hits"]) == 5
        assert all("aspirin dosing" in (h["label"] or h["output_label"] or "") for h in found["hits"])
        top = found["hits"][0]
        cards = [
            get(f"{url}/api/neuron/{key}?atlas=sample")
            for key in (f"L{top['layer']}/N{top['neuron']}", f"{top['layer']}_{top['neuron']}", str(top["layer"] * 512 + top["neuron"]))
        ]
        assert {c[0] for c in cards} == {200} and len({json.dumps(c[1], sort_keys=True) for c in cards}) == 1  # one card, three spellings
        card = cards[0][1]
        assert card["neuron_row"]["cluster_path"] and card["labels"] and card["graphs"]
        # every current label in the lake (the demo replaces no label file: all committed rows), with its provenance
        lake = duck.load(duckdb.connect(), "delta")
        lake_labels = lake.execute(
            f"""select source, pass, label, source_file, l.batch
                from delta_scan({duck.sql_string(demo_wh.table("labels"))}) as l
                semi join delta_scan({duck.sql_string(demo_wh.table("ingest_batches"))}) as b on l.atlas = b.atlas and l.batch = b.batch
                where l.atlas = 'sample' and layer = $1 and neuron = $2 and concat(label, short_label, description) <> ''
                order by all""",
            [top["layer"], top["neuron"]],
        ).fetchall()
        lake.close()
        assert sorted((x["source"], x["pass"], x["label"], x["source_file"], x["batch"]) for x in card["labels"]) == lake_labels
        assert set(card["edges"]) == {"relp", "weight_graph"} and card["edges"]["relp"]["downstream"]
        assert all(isinstance(g["graph_key"], str) for g in card["graphs"])  # int64 keys as text: JavaScript keeps them whole

        path = str(card["neuron_row"]["top_cluster"])
        status, circuit = get(f"{url}/api/circuit/{path}?atlas=sample")
        assert status == 200 and (top["layer"], top["neuron"]) in {(m["layer"], m["neuron"]) for m in circuit["members"]}
        members = {(m["layer"], m["neuron"]) for m in circuit["members"]}
        assert circuit["edges"] and all(
            (e["src_layer"], e["src_neuron"]) in members and (e["tgt_layer"], e["tgt_neuron"]) in members for e in circuit["edges"]
        )
        # the drawing the build stored (module_edges) is what a scan of the edges between the members finds
        status, scanned = get(f"{url}/api/circuit/{path}?atlas=sample&max_edges=5000")
        assert status == 200 and scanned["members"] == circuit["members"] and scanned["edges_total"] == circuit["edges_total"]
        assert scanned["edges"][: len(circuit["edges"])] == circuit["edges"] and len(circuit["edges"]) == min(600, circuit["edges_total"])
        assert get(f"{url}/api/circuit/{path}?atlas=sample&max_edges=0")[1]["edges_total"] == circuit["edges_total"]

        key = card["graphs"][0]["graph_key"]
        status, graph = get(f"{url}/api/graph/{key}?atlas=sample&max_links=50")
        assert status == 200 and graph["graph"]["prompt"] == card["graphs"][0]["prompt"]
        assert 0 < len(graph["links"]) <= 50 < graph["links_total"]
        ids = {(n["kind"], n["layer"], n["feature"], n["position"]) for n in graph["nodes"]}
        assert all((lk["src_kind"], lk["src_layer"], lk["src_feature"], lk["src_pos"]) in ids for lk in graph["links"])
        weights = [abs(lk["weight"]) for lk in graph["links"]]
        assert weights == sorted(weights, reverse=True)  # the strongest links
        cut = weights[len(weights) // 2]
        status, pruned = get(f"{url}/api/graph/{key}?atlas=sample&min_weight={cut}")
        assert status == 200 and all(abs(lk["weight"]) >= cut for lk in pruned["links"]) and len(pruned["links"]) < graph["links_total"]

        status, overview = get(f"{url}/api/overview")
        assert status == 200 and [a["name"] for a in overview["atlases"]] == ["sample"] and overview["audit"]["audits"]
        assert overview["atlases"][0]["circuits"] and {s["job"] for s in overview["atlases"][0]["sources"]} >= {"graphs", "labels"}
        for bad, why in (
            ("/api/neuron/L99/N1?atlas=sample", "outside the atlas shape"),
            ("/api/circuit/9999?atlas=sample", "no module 9999"),
            ("/api/graph/12345?atlas=sample", "no graph 12345"),
            ("/api/neuron/L1/N1?atlas=nope", "nope"),
            ("/api/diff", "--compare"),
        ):
            status, body = get(url + bad)
            assert status == 404 and why in body["error"] and "\n" not in body["error"], (bad, body)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1400", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager downloads nothing
    driver = webdriver.Chrome(options=options, service=Service(executable_path=system_binary("chromedriver", package="chromium-driver")))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _wait(driver, css: str, timeout: float = 30):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def test_a_browser_walks_search_neuron_neighbour_circuit_graph(demo_wh, browser):
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serving(demo_wh.root) as url:
        browser.get(f"{url}/search?q=aspirin+dosing&atlas=sample")
        hits = browser.find_elements(By.CSS_SELECTOR, "#hits tr.hit")
        assert len(hits) >= 5 and "aspirin dosing" in hits[0].text
        browser.save_screenshot(str(ARTIFACTS / "explorer_search.png"))

        hits[0].find_element(By.CSS_SELECTOR, "a.neuron-link").click()
        first = _wait(browser, "#neuron-title").text
        assert "aspirin dosing" in browser.find_element(By.ID, "neuron-label").text
        neuron_url = browser.current_url
        browser.save_screenshot(str(ARTIFACTS / "explorer_neuron.png"))

        neighbour = browser.find_element(By.CSS_SELECTOR, "table.edges a.neighbour-link")  # its strongest edge
        neighbour.click()
        second = _wait(browser, "#neuron-title").text
        assert second != first and second.startswith("L")

        browser.find_element(By.ID, "circuit-link").click()
        drawing = _wait(browser, "#drawing[data-drawn='true']")
        members = len(browser.find_elements(By.CSS_SELECTOR, "#members tr")) - 1
        path = browser.find_element(By.ID, "circuit-title").text.split()[1]
        expected = get(f"{url}/api/circuit/{path}?{browser.current_url.split('?')[1]}")[1]
        assert int(drawing.get_attribute("data-nodes")) == members == len(expected["members"]) > 1
        assert int(drawing.get_attribute("data-edges")) == len(expected["edges"]) > 0
        browser.save_screenshot(str(ARTIFACTS / "explorer_circuit.png"))

        browser.get(neuron_url)
        browser.find_element(By.CSS_SELECTOR, "a.graph-link").click()
        drawing = _wait(browser, "#drawing[data-drawn='true']")
        drawn = int(drawing.get_attribute("data-edges"))
        assert drawn > 0 and int(drawing.get_attribute("data-nodes")) > 0
        browser.save_screenshot(str(ARTIFACTS / "explorer_graph.png"))
        threshold = browser.find_element(By.ID, "min-weight")  # a higher threshold draws fewer links
        threshold.clear()
        threshold.send_keys("0.5")
        browser.find_element(By.CSS_SELECTOR, "#threshold-form button").click()
        deadline = time.monotonic() + 30
        while int(browser.find_element(By.ID, "drawing").get_attribute("data-edges")) == drawn and time.monotonic() < deadline:
            time.sleep(0.1)
        assert int(browser.find_element(By.ID, "drawing").get_attribute("data-edges")) < drawn

        browser.get(f"{url}/")
        _wait(browser, "[data-plots][data-loaded='true'] figure svg", timeout=120)
        assert "18 of 18 passed" in browser.find_element(By.ID, "audit-status").text
        browser.save_screenshot(str(ARTIFACTS / "explorer_overview.png"))

        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        requested = [json.loads(e["message"])["message"] for e in browser.get_log("performance")]
        urls = {m["params"]["request"]["url"] for m in requested if m["method"] == "Network.requestWillBeSent"}
        assert urls and all(u.startswith((url + "/", "data:", "about:")) for u in urls), sorted(urls)


def test_a_build_runs_while_serving_and_the_diff_lists_what_it_changed(tmp_path, small_corpus):
    wh = tmp_path / "wh"
    assert cli("atlas", "add", "small", "--model", "m", "--layers", "8", "--neurons-per-layer", "512", wh=wh).returncode == 0
    files = sorted(small_corpus.iterdir())
    assert cli("ingest", "graphs", *map(str, files[:12]), "--atlas", "small", wh=wh).returncode == 0
    assert cli("build", wh=wh).returncode == 0
    old = tmp_path / "before.duckdb"
    assert cli("export", str(old), "--layout", "circuitlake", "--atlas", "small", wh=wh).returncode == 0

    with serving(wh, "--compare", str(old)) as url:
        assert get(f"{url}/api/overview")[1]["atlases"][0]["metadata"]["graphs"] == "12"
        statuses: list[int] = []
        stop = threading.Event()

        def browse() -> None:  # a reader asking 20 times a second (more would only slow the build it waits on)
            while not stop.wait(0.05):
                statuses.append(get(f"{url}/api/neuron/L0/N1?atlas=small")[0])

        reader = threading.Thread(target=browse)
        reader.start()
        try:
            assert cli("ingest", "graphs", *map(str, files[12:]), "--atlas", "small", wh=wh).returncode == 0
            write_labels(SampleSpec(graphs=1, seed=3), tmp_path)
            assert cli("ingest", "labels", str(tmp_path / "labels" / "enriched.json"), "--atlas", "small", wh=wh).returncode in (0, 1)
            done = cli("build", wh=wh)  # while the explorer serves
            assert done.returncode == 0, done.stderr[-2000:]
            assert cli("cluster", "--atlas", "small", wh=wh).returncode == 0  # re-clustered on the new graphs
        finally:
            stop.set()
            reader.join()
        assert statuses and set(statuses) <= {200, 503}  # pages during the build say "being built", never fail
        assert get(f"{url}/api/overview")[1]["atlases"][0]["metadata"]["graphs"] == "24"  # the new build, no restart

        status, changed = get(f"{url}/api/diff?atlas=small")
        assert status == 200 and changed["counts"]["edges_appeared"] > 0 and changed["counts"]["labels_changed"] > 0
        assert changed["ami"] is not None and -1 <= changed["ami"] <= 1
        page = get(f"{url}/diff?atlas=small")
        assert page[0] == 200 and "edges appeared" in page[1]

    as_json = cli("diff", str(old), str(wh), "--atlas", "small", "--json")
    assert as_json.returncode == 0, as_json.stderr
    listed = json.loads(as_json.stdout)
    assert listed["counts"] == changed["counts"] and listed["ami"] == changed["ami"]
    appeared = listed["edges_appeared"][0]
    assert appeared["old_mean_abs_weight"] is None and appeared["new_mean_abs_weight"] > 0
    shown = cli("diff", str(old), str(wh), "--atlas", "small")
    assert shown.returncode == 0 and "edges that appeared" in shown.stdout and "labels that changed" in shown.stdout
    same = json.loads(cli("diff", str(wh), str(wh), "--atlas", "small", "--json").stdout)
    assert set(same["counts"].values()) == {0} and same["ami"] == 1.0  # a build against itself: nothing changed
    assert cli("diff", str(old), str(tmp_path / "nowhere")).returncode == 2


def test_serve_refuses_a_warehouse_without_a_build(tmp_path):
    missing = tmp_path / "missing"
    assert cli("serve", wh=missing).returncode == 2 and not missing.exists()  # no hidden writes
    wh = tmp_path / "wh"
    assert cli("atlas", "add", "t", "--model", "m", "--layers", "4", "--neurons-per-layer", "16", wh=wh).returncode == 0
    done = cli("serve", wh=wh)
    assert done.returncode == 2 and "run `circuitlake build` first" in done.stderr
