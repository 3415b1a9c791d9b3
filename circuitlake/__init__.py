"""circuitlake: a lakehouse for LLM neuron circuit atlases. `circuitlake.open(warehouse, atlas)` is the Python API."""

__version__ = "0.1.0"

from circuitlake.atlas import Atlas, Neuron, open  # noqa: E402  (the API; after __version__, which its imports read)

__all__ = ["Atlas", "Neuron", "__version__", "open"]
