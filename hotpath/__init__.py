"""Python face of the edgerank hot path.

The compiled module ``hotpath._native`` is private; import from here::

    from hotpath import Assembler, Blender, Reranker, HotpathError

Each class is built once per bundle from whole item arrays (copied into owned
Rust storage) and then called once per request stage over whole arrays. Every
call releases the GIL for its work.
"""

from hotpath._native import (
    Assembler,
    Blender,
    HotpathError,
    LayoutError,
    Reranker,
    ShapeError,
    UnknownItemError,
    __version__,
)

__all__ = [
    "Assembler",
    "Blender",
    "HotpathError",
    "LayoutError",
    "Reranker",
    "ShapeError",
    "UnknownItemError",
    "__version__",
]
