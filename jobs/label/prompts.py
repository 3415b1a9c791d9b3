"""What a prompt says: the pass's template (prompts/<pass>.txt, recorded by sha256) filled with what the
lake and the built atlas know of a neuron (projections, strongest edges with neighbours' labels,
activation descriptions), a layer at a time."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from circuitlake import duck, registry
from circuitlake.jobs.label.settings import LabelSettings
from circuitlake.settings import Warehouse, project_root

NEIGHBOURS = 8  # edges cited per prompt
# per pass: the edges table to ask, the neuron's side, the neighbour's side, the strength order, the
# neighbour label cited: downstream output labels (later layers, labeled first in pass 1), upstream input
# labels, else output labels (earlier layers, labeled first in pass 2)
NEIGHBOURS_OF = {
    "output": ("edges", "src", "tgt", "mean_abs_weight", "coalesce(output_label, label)"),
    "input": ("edges_by_target", "tgt", "src", "abs(mean_weight)", "coalesce(input_label, output_label, label)"),
}


@dataclass
class Template:
    pass_: str
    text: str
    sha: str

    @classmethod
    def load(cls, pass_: str) -> Template:
        text = (project_root() / "prompts" / f"{pass_}.txt").read_text()
        return cls(pass_, text, hashlib.sha256(text.encode()).hexdigest())


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
