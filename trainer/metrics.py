"""Ranking metrics over grouped rows (one group per user)."""

from __future__ import annotations

import numpy as np

_DISCOUNT = 1.0 / np.log2(np.arange(2, 1002))


def ndcg_at(ranked_hits: np.ndarray, n_relevant: int, k: int = 10) -> float:
    """NDCG@k of one ranked list of 0/1 hits, against ``n_relevant`` relevant items."""
    if n_relevant <= 0:
        return 0.0
    top = ranked_hits[:k].astype(np.float64)
    dcg = float((top * _DISCOUNT[: len(top)]).sum())
    idcg = float(_DISCOUNT[: min(n_relevant, k)].sum())
    return dcg / idcg


def recall_at(ranked_hits: np.ndarray, n_relevant: int, k: int) -> float:
    """Share of the relevant items found in the top k."""
    if n_relevant <= 0:
        return 0.0
    return float(ranked_hits[:k].sum()) / n_relevant


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half); NaN without both classes."""
    pos = labels > 0
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks for ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def grouped_ndcg(
    scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, n_relevant: np.ndarray, k: int = 10
) -> np.ndarray:
    """Per-group NDCG@k of ranking each group's rows by score."""
    off = np.r_[0, np.cumsum(groups)]
    out = np.empty(len(groups))
    for g in range(len(groups)):
        s, y = scores[off[g] : off[g + 1]], labels[off[g] : off[g + 1]]
        order = np.argsort(-s, kind="stable")
        out[g] = ndcg_at(y[order], int(n_relevant[g]), k)
    return out


def bootstrap_ci(values: np.ndarray, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    """A 95% bootstrap interval of the mean."""
    if len(values) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n, len(values)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)
