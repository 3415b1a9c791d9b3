"""Lake schema migrations: each step takes a lake from one schema version to the next without losing a row.

A step first makes its changes (each idempotent, so a step interrupted half-way is simply run again),
then stamps every table with the new version, one metadata commit per table; the lake's version is
its oldest table's, so it reads as migrated only once every table is stamped. Every command but
`circuitlake migrate` refuses a lake of an older version (lake.ensure).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

from circuitlake import lake, locks, registry
from circuitlake.settings import Warehouse


def _add_retractions(wh: Warehouse) -> None:
    """2: the `retractions` table (what `circuitlake retract` took out; `build` rebuilds after one)."""
    lake.create_missing(wh)


def _enriched_autointerp_pass(wh: Warehouse) -> None:
    """3: an enriched file's autointerp_label is pass `autointerp_original`, outside the default label
    precedence (the research OLMo atlas's rule); enriched batches are the label batches with output rows."""
    labels = lake.read(wh, "labels", ["batch", "pass"])
    enriched = sorted({b for b, p in zip(labels["batch"].to_pylist(), labels["pass"].to_pylist(), strict=False) if p == "output"})
    if enriched:
        listed = ", ".join(f"'{b}'" for b in enriched)
        lake.update(wh, "labels", {"pass": "'autointerp_original'"}, f"pass = 'autointerp' AND batch IN ({listed})")


def _add_label_calls(wh: Warehouse) -> None:
    """4: the `label_calls` table (every LLM call of `circuitlake label`)."""
    lake.create_missing(wh)


def _add_label_embeddings(wh: Warehouse) -> None:
    """5: the `label_embeddings` table (label vectors of `circuitlake embed`, for semantic search)."""
    lake.create_missing(wh)


def _atlas_units(wh: Warehouse) -> None:
    """6: atlas units (`atlases.unit`: every earlier atlas holds MLP neurons), the graph producers'
    counts (`graphs.ambiguous_links`, `zero_weight_links`, `error_nodes`, `generator`,
    `transcoder_set`: null for graphs landed before) and unit nodes' display labels (`graph_nodes.clerp`)."""
    for name in ("atlases", "graphs", "graph_nodes"):
        lake.add_missing_columns(wh, name)
    lake.update(wh, "atlases", {"unit": "'neuron'"}, "unit IS NULL")


STEPS: dict[str, tuple[str, Callable[[Warehouse], None]]] = {
    "1": ("2", _add_retractions),
    "2": ("3", _enriched_autointerp_pass),
    "3": ("4", _add_label_calls),
    "4": ("5", _add_label_embeddings),
    "5": ("6", _atlas_units),
}


def migrate(wh: Warehouse) -> list[str]:
    """Bring the lake to the current schema version; returns the steps run ("1 -> 2: ..."), [] when
    it is current. Holds every atlas's write lock throughout."""
    found = lake.lake_version(wh)
    if found is None or found == lake.SCHEMA_VERSION:
        return []
    done = []
    with ExitStack() as held:
        for atlas in registry.atlas_names(wh):  # names only: a killed step may have left records half-migrated
            held.enter_context(locks.atlas_lock(wh, atlas, "migrate"))
        version = found
        while version != lake.SCHEMA_VERSION:
            target, step = STEPS[version]
            step(wh)
            for name in lake.TABLES:
                if lake.schema_version(wh, name) != target:
                    lake.stamp(wh, name, target)
            done.append(f"{version} -> {target}: {(step.__doc__ or '').split(': ', 1)[-1]}")
            version = target
    return done
