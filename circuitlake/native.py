"""Native libraries whose load order matters: imported through here only, when first needed.

faiss and infomap are both SWIG modules and share SWIG's runtime type table: the one loaded last takes
over the Python class of the other's iterators, and iterating an Infomap result once faiss had been
loaded after infomap crashed the process (a segfault, found by `make test`). So faiss is always loaded
first (it costs ~0.3 s); the faiss calls circuitlake makes iterate nothing through SWIG.
"""

from __future__ import annotations

import sys
from types import ModuleType

from circuitlake.errors import UserError


def faiss() -> ModuleType:
    """The faiss module (semantic search's vector index)."""
    if "faiss" not in sys.modules and "infomap" in sys.modules:
        raise UserError("infomap was imported before faiss in this process, which crashes Infomap later: import faiss first")
    import faiss as module

    return module


def infomap() -> ModuleType:
    """The infomap module (clustering), faiss loaded before it."""
    faiss()
    import infomap as module

    return module
