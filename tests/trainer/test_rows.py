"""Ranking rows (trainer.rows): the user block of a row is the user's features as of the row's time."""

from __future__ import annotations

import numpy as np

from trainer import features as F
from trainer.artifacts import IndexConfig, build_index, primary_genre
from trainer.candidates import CandidateGenerator, index_search
from trainer.data import Interactions
from trainer.rows import ItemTables, build_rows

NOW = 1_700_000_000.0


def tables(n_items: int = 12, n_genres: int = 3) -> ItemTables:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(n_items, 4)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    genre = np.zeros((n_items, n_genres), np.float32)
    genre[np.arange(n_items), np.arange(n_items) % n_genres] = 1.0
    dense = np.column_stack([np.zeros((n_items, len(F.ITEM_SCALARS))), genre]).astype(np.float32)
    return ItemTables(dense, emb, genre, np.full(n_items, NOW - 1e6), primary_genre(genre))


def interactions(rows: list[tuple[int, int, float, float]]) -> Interactions:
    """(user, item, value, ts) rows, sorted as the loader sorts them."""
    rows = sorted(rows, key=lambda r: (r[0], r[3], r[1]))
    a = np.array(rows, dtype=np.float64)
    return Interactions(
        ["u0", "u1"], a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2], a[:, 2] >= 4, a[:, 3]
    )


def test_the_user_block_of_a_row_has_the_session_before_the_row_time() -> None:
    items = tables()
    g = items.genre.shape[1]
    every = np.arange(12, dtype=np.uint32)
    search = index_search(build_index(items.emb, IndexConfig(dtype="f32")))
    gen = CandidateGenerator(search, search, items.emb, every, every)
    # u0: an old interaction, two in the half hour before its first label; u1: nothing recent
    history = interactions(
        [
            (0, 0, 5.0, NOW - 86_400.0),
            (0, 1, 5.0, NOW - 600.0),
            (0, 4, 2.0, NOW - 60.0),
            (1, 2, 5.0, NOW - 86_400.0),
        ]
    )
    labels = interactions([(0, 7, 5.0, NOW), (0, 8, 5.0, NOW + 5.0), (1, 9, 5.0, NOW)])
    rows = build_rows(history, labels, items, gen, pool_size=8)
    assert rows.users.tolist() == [0, 1] and rows.now.tolist() == [NOW, NOW]
    off = rows.offsets()
    u0 = rows.x[off[0] : off[1], : F.user_dim(g)]
    u1 = rows.x[off[1] : off[2], : F.user_dim(g)]
    # u0's session: items 1 (genre 1, positive) and 4 (genre 1, not positive); the label is not in it
    np.testing.assert_allclose(u0[:, F.session_slice(g)], [[np.log1p(2), 0.5, 0.0, 1.0, 0.0]] * len(u0), rtol=1e-6)
    assert not u1[:, F.session_slice(g)].any()
    h = history.subset(history.user == 0)
    expect = F.user_features(h.item, h.value, h.positive, h.timestamp, items.emb, items.genre, now=NOW)
    np.testing.assert_array_equal(u0, np.tile(expect.dense, (len(u0), 1)))
