"""The columns of a packed item table (``item_rows.npy``) as NumPy views: no copies.

The hot path's item table holds one row per item, ``[emb | genre | dense |
first_ts | padding]`` (:func:`hotpath.write_item_rows` writes it,
:meth:`hotpath.Assembler.open` maps it). A bundle carries the item arrays in
this file only; every Python reader takes them from it through
:func:`item_columns`, whose offsets come from the Rust core's own layout
(:func:`hotpath.item_row_layout`), so that no reader slices the rows by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hotpath import ShapeError, item_row_layout


@dataclass(frozen=True)
class ItemColumns:
    """Views of one packed item table; writing to them is writing to the table (a mapped file is read-only)."""

    rows: np.ndarray  # f32 [n_items, stride], the table itself (C-contiguous)
    emb: np.ndarray  # f32 [n_items, D]
    genre: np.ndarray  # f32 [n_items, G]
    dense: np.ndarray  # f32 [n_items, item_dim]
    first_ts: np.ndarray  # f64 [n_items] (an unaligned view: its two f32 halves are 4-byte aligned)

    @property
    def n_items(self) -> int:
        return len(self.rows)


def item_columns(rows: np.ndarray, emb_dim: int, n_genres: int, item_dim: int) -> ItemColumns:
    """The item arrays of ``rows``, a packed table of items with these dimensions, as strided views.

    Raises :class:`hotpath.ShapeError` (a ``ValueError``) if ``rows`` is not a C-contiguous float32
    table with the row stride of these dimensions.
    """
    stride, columns = item_row_layout(emb_dim, n_genres, item_dim)
    if rows.ndim != 2 or rows.dtype != np.float32 or rows.shape[1] != stride:
        raise ShapeError(
            f"item rows: {rows.dtype} {rows.shape}, expected float32 rows of {stride} floats "
            f"(emb {emb_dim}, genres {n_genres}, item features {item_dim})"
        )
    if not rows.flags.c_contiguous:
        raise ShapeError("item rows: not a C-contiguous table")
    at = {name: slice(start, stop) for name, start, stop in columns}
    # first_ts: two f32 slots per row that hold the f64's bits, low half first (little-endian).
    first_ts = rows[:, at["first_ts"]].view("<f8")[:, 0]
    return ItemColumns(rows, rows[:, at["emb"]], rows[:, at["genre"]], rows[:, at["dense"]], first_ts)
