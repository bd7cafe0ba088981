"""Choosing the index's ``expansion_search`` by measured recall against exact search."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from usearch.index import Index

EXACT_CHUNK = 1 << 18


def exact_top_k(queries: np.ndarray, item_emb: np.ndarray, k: int) -> np.ndarray:
    """i64 [n_queries, k]: the k items with the largest inner product, by brute force."""
    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_i = np.empty((len(queries), 0), np.int64)
    for s in range(0, len(item_emb), EXACT_CHUNK):
        scores = queries @ item_emb[s : s + EXACT_CHUNK].T
        kk = min(k, scores.shape[1])
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        all_s = np.hstack([best_s, np.take_along_axis(scores, top, axis=1)])
        all_i = np.hstack([best_i, top + s])
        keep = np.argsort(-all_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(all_s, keep, axis=1), np.take_along_axis(all_i, keep, axis=1)
    return best_i


def recall_at_k(index: Index, queries: np.ndarray, exact: np.ndarray, k: int) -> tuple[float, float]:
    """(mean recall@k, mean ms per single-query search) at the index's current expansion."""
    hits = 0
    t0 = time.perf_counter()
    for q, truth in zip(queries, exact, strict=True):
        found = index.search(q, k).keys
        hits += len(np.intersect1d(found.astype(np.int64), truth))
    ms = (time.perf_counter() - t0) * 1e3 / len(queries)
    return hits / (k * len(queries)), ms


def tune_expansion(
    index: Index,
    item_emb: np.ndarray,
    queries: np.ndarray,
    expansions: tuple[int, ...],
    target: float,
    k: int = 100,
) -> dict[str, Any]:
    """Measure recall@k at each expansion; set the smallest one reaching ``target`` (else the best)."""
    exact = exact_top_k(queries.astype(np.float32), item_emb, k)
    measured = []
    for e in sorted(expansions):
        setattr(index, "expansion_search", e)  # noqa: B010 - a setter mypy cannot see
        recall, ms = recall_at_k(index, queries, exact, k)
        measured.append({"expansion_search": e, f"recall@{k}": round(recall, 4), "ms_per_query": round(ms, 3)})
    meeting = [m for m in measured if m[f"recall@{k}"] >= target]
    chosen = meeting[0] if meeting else max(measured, key=lambda m: m[f"recall@{k}"])
    setattr(index, "expansion_search", chosen["expansion_search"])  # noqa: B010
    return {
        "k": k,
        "queries": len(queries),
        "target_recall": target,
        "measured": measured,
        "expansion_search": chosen["expansion_search"],
        f"recall@{k}": chosen[f"recall@{k}"],
        "met_target": bool(meeting),
    }
