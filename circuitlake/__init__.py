"""circuitlake: a lakehouse for LLM neuron circuit atlases."""

__version__ = "0.1.0"
