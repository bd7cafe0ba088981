"""Offline evaluation, following DESIGN.md's protocol.

Warm users are scored on their held-out tail, cold users (unknown to the
node) on all their positives. Models: ``popularity`` (the global list),
``retrieval`` (ANN order), ``teacher`` and ``student`` (re-ranking the
candidate pool the node would build). Candidates are training items the
user has not interacted with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm import tqdm

from trainer.artifacts import Artifacts
from trainer.data import Interactions
from trainer.metrics import auc, bootstrap_ci, ndcg_at, recall_at
from trainer.rows import Rows, build_rows, history_features, user_slices

MODELS = ("popularity", "retrieval", "teacher", "student")
Scorer = Callable[[np.ndarray], np.ndarray]


class _Tally:
    """Per-user metrics of one model."""

    def __init__(self, eligible: int):
        self.ndcg: list[float] = []
        self.r10: list[float] = []
        self.r100: list[float] = []
        self.top10: set[int] = set()
        self.eligible = eligible

    def add(self, ranked_items: np.ndarray, positives: np.ndarray, n_relevant: int) -> None:
        hits = np.isin(ranked_items[:100], positives)
        self.ndcg.append(ndcg_at(hits, n_relevant, 10))
        self.r10.append(recall_at(hits, n_relevant, 10))
        self.r100.append(recall_at(hits, n_relevant, 100))
        self.top10.update(int(i) for i in ranked_items[:10])

    def summary(self, extra: dict[str, float] | None = None) -> dict[str, Any]:
        nd = np.array(self.ndcg)
        lo, hi = bootstrap_ci(nd)
        return {
            "ndcg@10": float(nd.mean()) if len(nd) else float("nan"),
            "ndcg@10_ci95": [lo, hi],
            "recall@10": float(np.mean(self.r10)) if self.r10 else float("nan"),
            "recall@100": float(np.mean(self.r100)) if self.r100 else float("nan"),
            "coverage@10": len(self.top10) / max(self.eligible, 1),
            **(extra or {}),
        }


def _ranked(scores: np.ndarray, items: np.ndarray) -> np.ndarray:
    return items[np.argsort(-scores, kind="stable")]


def evaluate(
    artifacts: Artifacts,
    train: Interactions,
    test_warm: Interactions,
    test_cold: Interactions,
    scorers: dict[str, Scorer],
    pool_size: int = 500,
) -> dict[str, Any]:
    """Metrics for groups ``warm`` and ``cold``; ``scorers`` maps model names to f(x) -> scores."""
    n_items = len(artifacts.items.emb)
    eligible = np.zeros(n_items, dtype=bool)
    eligible[train.item] = True
    n_eligible = int(eligible.sum())
    popular = artifacts.lists["global"]
    popular = popular[eligible[popular]]
    gen = artifacts.generator()

    rows: Rows = build_rows(train, test_warm, artifacts.items, gen, pool_size, eligible=eligible, desc="eval")
    off = rows.offsets()
    hist = user_slices(train)
    labels = user_slices(test_warm)
    warm = {m: _Tally(n_eligible) for m in MODELS}
    model_scores = {name: f(rows.x) for name, f in scorers.items()}
    for g, u in enumerate(tqdm(rows.users, desc="metrics", unit="user", leave=False)):
        ls = labels[int(u)]
        positives = np.unique(test_warm.item[ls][test_warm.positive[ls]])
        n_rel = int(rows.n_positives[g])
        hs = hist[int(u)]
        seen = np.unique(train.item[hs])
        warm["popularity"].add(popular[~np.isin(popular, seen)], positives, n_rel)
        uf = history_features(train, hs, artifacts.items)
        items, _ = gen.retrieve(uf.embedding, 100 + len(seen) + (n_items - n_eligible))
        keep = eligible[items] & ~np.isin(items, seen)
        warm["retrieval"].add(items[keep], positives, n_rel)
        sl = slice(off[g], off[g + 1])
        for name, scores in model_scores.items():
            warm[name].add(_ranked(scores[sl], rows.items[sl]), positives, n_rel)
    aucs = {name: auc(s, rows.y) for name, s in model_scores.items()}
    aucs["retrieval"] = auc(rows.retrieval_score * (rows.source == 0), rows.y)
    result: dict[str, Any] = {
        "warm": {"users": len(rows.users)},
        "cold": {},
        "pool_size": pool_size,
        "pool_recall": float(rows.y.sum() / rows.n_positives.sum()),
    }
    for m in MODELS:
        if m in warm and ((m != "teacher" and m != "student") or m in scorers):
            result["warm"][m] = warm[m].summary({"auc": aucs[m]} if m in aucs else None)

    # Cold users reach the node as unknown users: every model answers with popularity.
    cold = _Tally(n_eligible)
    cold_slices = user_slices(test_cold)
    for sl in cold_slices.values():
        positives = np.unique(test_cold.item[sl][test_cold.positive[sl]])
        if len(positives):
            cold.add(popular, positives, len(positives))
    cold_summary = cold.summary()
    result["cold"]["users"] = len(cold.ndcg)
    for m in MODELS:
        if m in result["warm"]:
            result["cold"][m] = {**cold_summary, "served_by": "POPULARITY"}
    return result
