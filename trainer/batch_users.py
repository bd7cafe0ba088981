"""Batch user features for every user at once, vectorised.

The same computation as :func:`trainer.features.user_features` (which works
one user at a time and is what the ranker's rows use), expressed as per-user
reductions over all interactions, so that a million users take seconds rather
than minutes. ``tests/trainer/test_batch_users.py`` checks that both agree.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from trainer.data import Interactions
from trainer.features import SECONDS_PER_DAY, session_dim

HALF_LIFE_DAYS = 365.0


def batch_user_tables(data: Interactions, item_emb: np.ndarray, item_genre: np.ndarray) -> dict[str, np.ndarray]:
    """The bundle's ``user_*.npy`` arrays for every user with at least one interaction.

    ``data`` must be sorted by (user, timestamp). Users are in index order.
    """
    n_users = len(data.user_ids)
    counts = np.bincount(data.user, minlength=n_users)
    present = np.flatnonzero(counts > 0)
    user = data.user
    ts = data.timestamp.astype(np.float64)
    last = np.full(n_users, -np.inf)
    np.maximum.at(last, user, ts)
    first = np.full(n_users, np.inf)
    np.minimum.at(first, user, ts)
    pos = data.positive.astype(bool)
    n_pos = np.bincount(user, weights=pos.astype(np.float64), minlength=n_users)
    value_sum = np.bincount(user, weights=data.value.astype(np.float64), minlength=n_users)
    basis = pos | (n_pos[user] == 0)
    age_days = (last[user] - ts) / SECONDS_PER_DAY
    weight = np.where(basis, np.power(0.5, age_days / HALF_LIFE_DAYS), 0.0)
    shape = (n_users, item_emb.shape[0])
    w = sp.csr_matrix((weight, (user, data.item)), shape=shape)
    emb = np.asarray(w @ item_emb.astype(np.float64))
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = np.divide(emb, norm, out=np.zeros_like(emb), where=norm > 0)
    b = sp.csr_matrix((basis.astype(np.float64), (user, data.item)), shape=shape)
    genre = np.asarray(b @ item_genre.astype(np.float64))
    total = genre.sum(axis=1, keepdims=True)
    genre = np.divide(genre, total, out=np.zeros_like(genre), where=total > 0)
    c = np.maximum(counts, 1).astype(np.float64)
    span_days = np.where(counts > 0, (last - first) / SECONDS_PER_DAY, 0.0)
    # Batch features have no request time: their session block is empty (trainer.features.session_block).
    session = np.zeros((n_users, session_dim(item_genre.shape[1])))
    dense = np.column_stack([np.log1p(counts), value_sum / c, n_pos / c, np.log1p(span_days), session, genre])
    indptr = np.r_[0, np.cumsum(counts[present])].astype(np.int64)
    # Rows are sorted by user, so each present user's items are contiguous and in time order.
    return {
        "user_ids": np.array([data.user_ids[u] for u in present], dtype=str),
        "user_dense": np.ascontiguousarray(dense[present], dtype=np.float32),
        "user_emb": np.ascontiguousarray(emb[present], dtype=np.float32),
        "user_last_ts": np.ascontiguousarray(last[present], dtype=np.float64),
        "user_seen_indptr": indptr,
        "user_seen_items": data.item.astype(np.uint32),
    }
