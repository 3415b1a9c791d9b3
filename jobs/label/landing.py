"""How labels land: one `labels` row per answer, and the resume rule (what is already labeled)."""

from __future__ import annotations

from circuitlake import lake
from circuitlake.jobs.label.prompts import Template
from circuitlake.jobs.label.settings import LabelSettings, run_name
from circuitlake.settings import Warehouse


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


def label_row(pass_: str, layer: int, neuron: int, answer: dict, s: LabelSettings) -> dict:
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


def landing(wh: Warehouse, atlas: str, s: LabelSettings, template: Template) -> lake.Landing:
    """Labels and their calls, committed as one batch (job `label`, source = the run name) every
    `commit_every` calls or `commit_seconds`."""
    return lake.Landing(
        wh,
        atlas,
        "label",
        run_name(s),
        lake.Inputs.recording(template=template.sha, model=s.model),
        ("labels", "label_calls"),
        s.commit_every,
        s.commit_seconds,
    )
