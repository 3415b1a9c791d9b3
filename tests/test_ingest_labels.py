"""Label ingest: every format and key spelling, rejects, source replacement, coverage around its threshold."""

from __future__ import annotations

import gzip
import json

import duckdb
import pytest
from deltalake import DeltaTable

from circuitlake import lake, registry
from circuitlake.app.build import build
from circuitlake.app.report import run_audits
from circuitlake.formats.label_files import formats, unit_of
from circuitlake.ingest.labels import detect_format, ingest_labels


@pytest.fixture
def tiny_atlas(wh):
    registry.add(wh, registry.AtlasRecord(atlas="t", model_id="m", num_layers=4, neurons_per_layer=10, min_label_coverage=0.5))
    return registry.get(wh, "t")


def labels(wh, source=None):
    rows = lake.read(wh, "labels", filters=[("atlas", "=", "t")]).to_pylist()
    return sorted((r["layer"], r["neuron"], r["pass"], r["label"]) for r in rows if source in (None, r["source"]))


@pytest.mark.parametrize("key, expected", [("L2/N7", (2, 7)), ("L2/7", (2, 7)), ("2_7", (2, 7)), (27, (2, 7)), ("27", (2, 7))])
def test_every_key_spelling_normalises(tiny_atlas, key, expected):
    assert unit_of(key, tiny_atlas) == expected


def test_autointerp_jsonl_with_bad_lines(wh, tiny_atlas, tmp_path):
    f = tmp_path / "labels.jsonl"
    f.write_text(
        "\n".join(
            [
                json.dumps(
                    {
                        "feature_id": 12,
                        "labels": [{"label": "coins", "metadata": {"parsed_response": {"description": "mint marks"}}}],
                        "feature_metadata": {"layer": 1, "neuron": 2, "num_exemplars": 20, "max_activation": 65.0},
                    }
                ),
                json.dumps({"feature_id": 13, "labels": []}),  # a labeling error upstream: kept, unlabeled
                '{"feature_id": 14, "labels": [',  # unparseable
                json.dumps({"feature_id": 15, "feature_metadata": {"layer": 3, "neuron": 5}}),  # disagrees with its layer/neuron
                json.dumps({"feature_id": 400}),  # outside 4 x 10
            ]
        )
        + "\n"
    )
    assert detect_format(f, formats()) == "autointerp-jsonl"
    report = ingest_labels(wh, "t", f, show_progress=False)
    assert report.rejected == 3 and report.exit_code == 1
    assert labels(wh) == [(1, 2, "autointerp", "coins"), (1, 3, "autointerp", None)]
    rejects = {r["record"]: r["reason"] for r in lake.read(wh, "rejects").to_pylist()}
    assert set(rejects) == {"line 3", "line 4", "line 5"}
    assert "but feature_metadata says L3/N5" in rejects["line 4"]
    assert "outside the atlas shape" in rejects["line 5"]
    row = next(r for r in lake.read(wh, "labels").to_pylist() if r["neuron"] == 2)
    assert (row["description"], row["max_activation"], row["num_exemplars"], row["record"]) == ("mint marks", 65.0, 20, "line 1")


def test_enriched_json_streams_both_passes_in_every_spelling(wh, tiny_atlas, tmp_path):
    f = tmp_path / "olmo_enriched.json.gz"
    f.write_bytes(
        gzip.compress(
            json.dumps(
                {
                    "L0/N1": {"label": "a", "short_label": "sa", "input_label": "ia", "autointerp_label": "aa"},
                    "L1/2": {"label": "b", "input_label": "ib"},
                    "2_3": {"label": "c"},
                    "L9/N0": {"label": "outside"},
                    "L1/N2": {"label": "duplicate of L1/2"},
                }
            ).encode()
        )
    )
    assert detect_format(f, formats()) == "enriched"
    report = ingest_labels(wh, "t", f, show_progress=False)
    assert report.rejected == 2
    assert labels(wh) == [
        (0, 1, "autointerp_original", "aa"),
        (0, 1, "input", "ia"),
        (0, 1, "output", "a"),
        (1, 2, "input", "ib"),
        (1, 2, "output", "b"),
        (2, 3, "input", None),
        (2, 3, "output", "c"),
    ]
    assert {r["source"] for r in lake.read(wh, "labels").to_pylist()} == {"olmo_enriched"}


def test_function_db_and_activation_descriptions(wh, tiny_atlas, tmp_path):
    db = tmp_path / "neuron_labels_combined.json"
    db.write_text(
        json.dumps(
            {
                "neurons": {
                    "L3/N4": {
                        "neuron_id": "L3/N4",
                        "layer": 3,
                        "neuron_idx": 4,
                        "function_label": "routes",
                        "input_label": "when x",
                        "output_norm": 1.25,
                    },
                    "L3/N5": {"neuron_id": "L3/N5", "layer": 2, "neuron_idx": 5, "function_label": "mismatch"},
                }
            }
        )
    )
    profiles = tmp_path / "edge_stats_enriched.json"
    profiles.write_text(
        json.dumps(
            {
                "metadata": {"tau": 0.005},
                "summary": {"total_neurons": 2},
                "profiles": [
                    {"layer": 3, "neuron": 4, "neuron_id": "L3/N4", "transluce_label_positive": "pos", "transluce_label_negative": "neg"},
                    {"neuron_id": "L0/N0", "transluce_label_positive": "only id"},
                ],
            }
        )
    )
    assert (detect_format(db, formats()), detect_format(profiles, formats())) == ("function-db", "activation-descriptions")
    assert ingest_labels(wh, "t", db, show_progress=False).rejected == 1
    assert ingest_labels(wh, "t", profiles, source="transluce", show_progress=False).rejected == 0
    assert labels(wh, "neuron_labels_combined") == [(3, 4, "input", "when x"), (3, 4, "output", "routes")]
    assert labels(wh, "transluce") == [
        (0, 0, "activation_neg", None),
        (0, 0, "activation_pos", "only id"),
        (3, 4, "activation_neg", "neg"),
        (3, 4, "activation_pos", "pos"),
    ]


def test_reingest_is_noop_and_a_newer_file_replaces_the_source_atomically(wh, tiny_atlas, tmp_path):
    v1, v2 = tmp_path / "v1.json", tmp_path / "v2.json"
    v1.write_text(json.dumps({"L0/N0": {"label": "old"}, "L0/N1": {"label": "gone later"}}))
    v2.write_text(json.dumps({"L0/N0": {"label": "new"}}))
    ingest_labels(wh, "t", v1, source="enriched", show_progress=False)
    version_after_v1 = DeltaTable(str(wh.table("labels"))).version()
    again = ingest_labels(wh, "t", v1, source="enriched", show_progress=False)
    assert again.skipped == 1 and again.rows == {}
    assert DeltaTable(str(wh.table("labels"))).version() == version_after_v1
    ingest_labels(wh, "t", v2, source="enriched", show_progress=False)
    assert labels(wh) == [(0, 0, "input", None), (0, 0, "output", "new")]
    # the old version stays reachable through Delta time travel
    old = DeltaTable(str(wh.table("labels")), version=version_after_v1).to_pyarrow_table().to_pylist()
    assert {r["label"] for r in old if r["pass"] == "output"} == {"old", "gone later"}
    # another source is untouched by the replacement
    ingest_labels(wh, "t", v1, source="other", show_progress=False)
    ingest_labels(wh, "t", v2, source="enriched", show_progress=False)
    assert len(labels(wh, "other")) == 4


def coverage_figure(report, atlas):
    return next(f["value"] for f in report.figures if f["atlas"] == atlas and f["figure"] == "label coverage")


def test_coverage_audit_passes_and_fails_around_its_threshold(wh, tmp_path):
    registry.add(wh, registry.AtlasRecord(atlas="t", model_id="m", num_layers=2, neurons_per_layer=10, min_label_coverage=0.5))
    f = tmp_path / "labels.json"
    # 10 of 20 neurons labeled; an empty string is not a label
    f.write_text(json.dumps({**{f"L0/N{i}": {"label": f"n{i}"} for i in range(10)}, "L1/N0": {"label": "", "short_label": " "}}))
    ingest_labels(wh, "t", f, show_progress=False)
    build(wh)
    report = run_audits(wh)
    audit = next(a for a in report.audits if a.name == "label_coverage_meets_threshold")
    assert audit.passed and not audit.blocking
    assert coverage_figure(report, "t") == "50.00% >= 50.00%"

    registry.add(wh, registry.AtlasRecord(atlas="t", model_id="m", num_layers=2, neurons_per_layer=10, min_label_coverage=0.51))
    build(wh)  # non-blocking: the build goes through below the threshold
    report = run_audits(wh)
    audit = next(a for a in report.audits if a.name == "label_coverage_meets_threshold")
    assert not audit.passed and audit.failing_rows == 1 and not report.passed
    assert coverage_figure(report, "t") == "50.00% < 51.00%"

    registry.add(wh, registry.AtlasRecord(atlas="t", model_id="m", num_layers=2, neurons_per_layer=10))
    build(wh)
    report = run_audits(wh)
    assert report.passed and coverage_figure(report, "t") == "50.00% (no threshold)"


def test_olmo_shaped_atlas_reports_97_8_percent_and_passes_at_0_978(wh, tmp_path):
    layers, npl, labeled = 32, 11_008, 344_551
    registry.add(
        wh,
        registry.AtlasRecord(
            atlas="olmo-3-7b", model_id="allenai/OLMo-3-7B-Instruct", num_layers=layers, neurons_per_layer=npl, min_label_coverage=0.978
        ),
    )
    f = tmp_path / "olmo3_enriched_labels.json"
    with f.open("w") as out:  # streamed out, like the real 513 MB file is streamed in
        out.write("{")
        for i in range(labeled):
            layer, neuron = divmod(i, npl)
            out.write(("," if i else "") + f'"L{layer}/N{neuron}": {{"label": "l{i}", "short_label": "s{i}", "input_label": "in{i}"}}')
        out.write("}")
    report = ingest_labels(wh, "olmo-3-7b", f, show_progress=False)
    assert report.rows["labels"] == 2 * labeled
    build(wh)
    audit_report = run_audits(wh)
    assert coverage_figure(audit_report, "olmo-3-7b") == "97.81% >= 97.80%"
    assert next(a for a in audit_report.audits if a.name == "label_coverage_meets_threshold").passed
    con = duckdb.connect(str(wh.duckdb), read_only=True)
    n, labeled_n = con.execute("select count(*), count(label) from neurons where atlas = 'olmo-3-7b'").fetchone()
    con.close()
    assert (n, labeled_n) == (352_256, 344_551)


def test_enriched_autointerp_label_alone_is_not_an_atlas_label(wh, tmp_path):
    """The research OLMo rule: label = short_label, else label; an entry carrying only its original
    autointerp label does not count towards coverage (it is kept, as pass autointerp_original)."""
    registry.add(wh, registry.AtlasRecord(atlas="e", model_id="m", num_layers=2, neurons_per_layer=5, min_label_coverage=0.5))
    f = tmp_path / "enriched.json"
    f.write_text(
        json.dumps(
            {
                "L0/N0": {"label": "l0", "short_label": "s0", "autointerp_label": "a0"},
                "L0/N1": {"label": "l1", "autointerp_label": "a1"},
                "L0/N2": {"autointerp_label": "a2"},
                "L0/N3": {"label": "", "autointerp_label": "a3"},
                "L1/N0": {"short_label": "s5"},
            }
        )
    )
    ingest_labels(wh, "e", f, show_progress=False)
    build(wh)
    con = duckdb.connect(str(wh.duckdb), read_only=True)
    picked = con.execute("select layer, neuron, label from neurons where atlas = 'e' and label is not null order by all").fetchall()
    con.close()
    assert picked == [(0, 0, "s0"), (0, 1, "l1"), (1, 0, "s5")]
    assert coverage_figure(run_audits(wh), "e") == "30.00% < 50.00%"
