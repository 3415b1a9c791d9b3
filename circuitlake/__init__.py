"""circuitlake: a lakehouse for LLM neuron circuit atlases. `circuitlake.open(warehouse, atlas)` is the Python API.

Installed from a wheel, the jobs and the CLI are the subpackages circuitlake.ingest, circuitlake.jobs and
circuitlake.app. A checkout keeps those folders at the top of the repository (the product's layout); the
same names import there because the checkout's root joins this package's search path.
"""

from pathlib import Path as _Path

__version__ = "0.1.0"

_checkout = _Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").exists() and (_checkout / "ingest" / "__init__.py").exists():
    __path__.append(str(_checkout))  # circuitlake.ingest -> <checkout>/ingest, .jobs, .app likewise

from circuitlake.atlas import Atlas, Neuron, open  # noqa: E402  (the API; after __version__, which its imports read)

__all__ = ["Atlas", "Neuron", "__version__", "open"]
