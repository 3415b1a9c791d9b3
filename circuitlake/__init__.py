"""circuitlake: a lakehouse for LLM neuron circuit atlases. `circuitlake.open(warehouse, atlas)` is the Python API.

The layers, bottom up: circuitlake.lake (the Delta lake boundary and its commit protocol), the core modules
here (registry, warehouse, DuckDB access, search), circuitlake.ingest and circuitlake.jobs (the jobs that write
the lake), circuitlake.app (the CLI and what it shows). A checkout keeps ingest/, jobs/ and app/ at the top of
the repository; circuitlake/ingest, circuitlake/jobs and circuitlake/app are relative symlinks to them, so the
interpreter, mypy and editors resolve one package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from circuitlake.atlas import Atlas, Neuron, open

__all__ = ["Atlas", "Neuron", "__version__", "open"]


def __getattr__(name: str) -> object:
    """The API (`open`, `Atlas`, `Neuron`) loads on first use: `import circuitlake.settings` and the CLI's
    start stay free of DuckDB and pyarrow."""
    if name in ("Atlas", "Neuron", "open"):
        from circuitlake import atlas

        return getattr(atlas, name)
    raise AttributeError(f"module 'circuitlake' has no attribute {name!r}")
