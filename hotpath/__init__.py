"""Python face of the edgerank hot path.

The compiled module ``hotpath._native`` is private; import from here::

    from hotpath import AnnIndex, Assembler, Blender, IvfIndex, Reranker, HotpathError

Each class is built once per bundle from whole item arrays (copied into owned
Rust storage; ``AnnIndex`` maps the bundle's usearch index file,
``Assembler.open`` its item rows file, which ``write_item_rows`` writes,
``IvfIndex.open`` its five IVF files, and ``IvfIndex`` keeps the item
embeddings it re-scores with) and then called once per request stage over
whole arrays. Every call releases the GIL for its work.
"""

from hotpath._native import (
    RESIDENCY_PIECE_BYTES,
    AnnIndex,
    AnnIndexError,
    Assembler,
    Blender,
    HotpathError,
    ItemRowsError,
    IvfIndex,
    IvfIndexError,
    LayoutError,
    Reranker,
    ShapeError,
    UnknownItemError,
    __version__,
    bulk_niceness,
    file_mappings,
    item_row_layout,
    lock_code_mappings,
    prefault_mappings,
    release_mappings,
    write_item_rows,
)

__all__ = [
    "RESIDENCY_PIECE_BYTES",
    "AnnIndex",
    "AnnIndexError",
    "Assembler",
    "Blender",
    "HotpathError",
    "ItemRowsError",
    "IvfIndex",
    "IvfIndexError",
    "LayoutError",
    "Reranker",
    "ShapeError",
    "UnknownItemError",
    "__version__",
    "bulk_niceness",
    "file_mappings",
    "item_row_layout",
    "lock_code_mappings",
    "prefault_mappings",
    "release_mappings",
    "write_item_rows",
]
