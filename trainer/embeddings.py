"""Item embeddings for retrieval: a collaborative part and a content part.

The collaborative part is PureSVD: the top right singular vectors of the
user-item matrix (positives weigh 1, other interactions 0.5). The content
part is a low-rank projection of each item's genres and tags (TF-IDF), so
that every item has a vector. Items with no training interaction get a
collaborative part predicted from their content by ridge regression, which
lets a brand-new item be retrieved on the first day.

A user's embedding is not learnt here: it is the recency-weighted mean of the
embeddings of the items they liked (:func:`trainer.features.user_features`),
so a node can compute it from fresh history too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from trainer.data import Catalog, Interactions

NEGATIVE_WEIGHT = 0.5
MAX_TAGS = 1000


@dataclass(frozen=True)
class EmbeddingConfig:
    collab_dim: int = 32
    content_dim: int = 16
    content_weight: float = 0.35  # content norm relative to the mean collab norm
    ridge: float = 1.0
    seed: int = 0


def genre_vocabulary(catalog: Catalog, max_genres: int = 32) -> list[str]:
    """Genres by frequency (ties by name), at most ``max_genres``."""
    counts: dict[str, int] = {}
    for genres in catalog.genres:
        for g in genres:
            counts[g] = counts.get(g, 0) + 1
    return sorted(counts, key=lambda g: (-counts[g], g))[:max_genres]


def genre_matrix(catalog: Catalog, genres: list[str]) -> np.ndarray:
    """f32 [n_items, G] one-hot of each item's genres."""
    col = {g: j for j, g in enumerate(genres)}
    out = np.zeros((len(catalog), len(genres)), dtype=np.float32)
    for i, gs in enumerate(catalog.genres):
        for g in gs:
            if g in col:
                out[i, col[g]] = 1.0
    return out


def content_matrix(catalog: Catalog, item_genre: np.ndarray) -> sp.csr_matrix:
    """Row-normalised TF-IDF of tags, beside the genre one-hot."""
    tag_counts: dict[str, int] = {}
    for tags in catalog.tags:
        for t in set(tags):
            tag_counts[t] = tag_counts.get(t, 0) + 1
    vocab = sorted(tag_counts, key=lambda t: (-tag_counts[t], t))[:MAX_TAGS]
    col = {t: j for j, t in enumerate(vocab)}
    rows, cols, vals = [], [], []
    n = len(catalog)
    for i, tags in enumerate(catalog.tags):
        for t in tags:
            if t in col:
                rows.append(i)
                cols.append(col[t])
                vals.append(1.0)
    tags_m = sp.csr_matrix((vals, (rows, cols)), shape=(n, len(vocab)), dtype=np.float64)
    tags_m.sum_duplicates()
    if len(vocab):
        idf = np.log((1 + n) / (1 + np.array([tag_counts[t] for t in vocab], dtype=np.float64))) + 1
        tags_m = tags_m @ sp.diags(idf)
    genre_idf = np.log((1 + n) / (1 + item_genre.sum(axis=0).astype(np.float64))) + 1
    full = sp.hstack([sp.csr_matrix(item_genre.astype(np.float64) * genre_idf), tags_m]).tocsr()
    norms = np.sqrt(np.asarray(full.multiply(full).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ full)


def _truncated_svd(m: sp.csr_matrix, k: int, seed: int) -> np.ndarray:
    """Right singular vectors scaled by nothing: [n_cols, k], largest first."""
    k = max(1, min(k, min(m.shape) - 1))
    rng = np.random.default_rng(seed)
    v0 = rng.standard_normal(min(m.shape))
    _, s, vt = svds(m.astype(np.float64), k=k, v0=v0)
    order = np.argsort(-s)
    v = vt[order].T
    # Fix the sign of each component so that results are reproducible.
    signs = np.sign(v[np.abs(v).argmax(axis=0), np.arange(v.shape[1])])
    return np.asarray(v * signs)


def fit_item_embeddings(
    train: Interactions, catalog: Catalog, item_genre: np.ndarray, config: EmbeddingConfig
) -> np.ndarray:
    """f32 [n_items, collab_dim + content_dim] item embeddings."""
    n_users, n_items = len(train.user_ids), len(catalog)
    weights = np.where(train.positive, 1.0, NEGATIVE_WEIGHT)
    x = sp.csr_matrix((weights, (train.user, train.item)), shape=(n_users, n_items))
    collab = np.zeros((n_items, config.collab_dim))
    v = _truncated_svd(x, config.collab_dim, config.seed)
    collab[:, : v.shape[1]] = v
    content_full = content_matrix(catalog, item_genre)
    content = np.zeros((n_items, config.content_dim))
    cv = _truncated_svd(content_full, config.content_dim, config.seed)
    proj = np.asarray(content_full @ cv)
    content[:, : proj.shape[1]] = proj

    has_data = np.bincount(train.item, minlength=n_items) > 0
    if has_data.any() and (~has_data).any():
        # Ridge regression from content to the collaborative part, fit on items with data.
        a = content_full[has_data]
        gram = (a.T @ a).toarray() + config.ridge * np.eye(a.shape[1])
        coef = np.linalg.solve(gram, np.asarray(a.T @ collab[has_data]))
        collab[~has_data] = np.asarray(content_full[~has_data] @ coef)

    mean_collab = float(np.linalg.norm(collab[has_data], axis=1).mean()) if has_data.any() else 1.0
    c_norm = np.linalg.norm(content, axis=1, keepdims=True)
    c_norm[c_norm == 0] = 1.0
    content = content / c_norm * (config.content_weight * mean_collab)
    return np.ascontiguousarray(np.hstack([collab, content]).astype(np.float32))


def embedding_space_id(item_emb: np.ndarray) -> str:
    """Identifies the space: user vectors are only comparable with items of the same id."""
    h = hashlib.sha256(np.ascontiguousarray(item_emb).tobytes())
    h.update(str(item_emb.shape).encode())
    return "emb-" + h.hexdigest()[:16]
