"""Ranking metrics (trainer.metrics) on hand-checked cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from trainer.metrics import auc, bootstrap_ci, grouped_ndcg, ndcg_at, recall_at


def d(rank: int) -> float:
    """The DCG discount of a 1-based rank."""
    return 1.0 / math.log2(rank + 1)


def test_ndcg_hand_checked() -> None:
    hits = np.array([0, 1, 0, 1, 0])
    assert ndcg_at(hits, 2, 10) == pytest.approx((d(2) + d(4)) / (d(1) + d(2)))
    # a relevant item that was not retrieved still counts in the ideal
    assert ndcg_at(hits, 3, 10) == pytest.approx((d(2) + d(4)) / (d(1) + d(2) + d(3)))
    assert ndcg_at(np.array([1, 1, 0]), 2, 10) == pytest.approx(1.0)
    assert ndcg_at(np.array([0, 0, 0]), 2, 10) == 0.0
    assert ndcg_at(np.array([1, 0]), 0, 10) == 0.0  # no relevant items


def test_ndcg_cuts_at_k() -> None:
    hits = np.zeros(20)
    hits[10] = 1  # rank 11
    assert ndcg_at(hits, 1, 10) == 0.0
    assert ndcg_at(hits, 1, 11) == pytest.approx(d(11))
    # the ideal is capped at k relevant items
    assert ndcg_at(np.ones(20), 15, 10) == pytest.approx(1.0)


def test_recall_hand_checked() -> None:
    hits = np.array([1, 0, 1, 0, 1])
    assert recall_at(hits, 4, 1) == 0.25
    assert recall_at(hits, 4, 3) == 0.5
    assert recall_at(hits, 4, 100) == 0.75
    assert recall_at(hits, 0, 10) == 0.0


def test_auc_hand_checked() -> None:
    assert auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([1, 1, 0, 0])) == 1.0
    assert auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([1, 1, 0, 0])) == 0.0
    assert auc(np.array([0.9, 0.2, 0.8, 0.1]), np.array([1, 1, 0, 0])) == 0.75


def test_auc_ties_count_one_half() -> None:
    assert auc(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5
    assert auc(np.full(6, 3.0), np.array([1, 0, 1, 0, 0, 0])) == 0.5
    # pairs: (1, .5n) 1, (1, 0) 1, (.5p, .5n) 1/2, (.5p, 0) 1 -> 3.5 / 4
    assert auc(np.array([1.0, 0.5, 0.5, 0.0]), np.array([1, 1, 0, 0])) == 0.875


def test_auc_equals_the_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 60).astype(np.float64)  # many ties
    labels = (rng.random(60) < 0.3).astype(np.float32)
    pos, neg = scores[labels > 0], scores[labels == 0]
    pairs = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)]
    assert auc(scores, labels) == pytest.approx(sum(pairs) / len(pairs))


def test_auc_needs_both_classes() -> None:
    assert math.isnan(auc(np.array([0.1, 0.2]), np.array([1, 1])))
    assert math.isnan(auc(np.array([0.1, 0.2]), np.array([0, 0])))


def test_grouped_ndcg() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.3, 0.2])
    labels = np.array([1, 0, 0, 0, 1])
    groups = np.array([3, 2])
    out = grouped_ndcg(scores, labels, groups, np.array([1, 2]))
    # group 1 ranks [0.9, 0.5, 0.1] -> the hit is third; group 2 ranks [0.3, 0.2] -> second
    np.testing.assert_allclose(out, [d(3) / d(1), d(2) / (d(1) + d(2))])


def test_bootstrap_ci_contains_the_mean() -> None:
    rng = np.random.default_rng(1)
    values = rng.random(200) ** 2
    lo, hi = bootstrap_ci(values)
    assert lo < float(values.mean()) < hi
    assert hi - lo < 0.2
    assert bootstrap_ci(values) == (lo, hi)  # seeded: reproducible
    c = bootstrap_ci(np.full(10, 0.25))
    assert c == pytest.approx((0.25, 0.25))
    assert all(math.isnan(x) for x in bootstrap_ci(np.empty(0)))
