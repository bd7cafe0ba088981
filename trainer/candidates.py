"""Candidate generation, shared by the trainer and the node.

The ranker is trained on the very candidate pools the node will score, so
both call :class:`CandidateGenerator`: ANN retrieval over the usearch index
with the user's embedding, session continuation (neighbours of the most
recent item), trending and fresh lists, blended by the Rust
:class:`hotpath.Blender` with per-source quotas, minus what the user has
seen and what the request excludes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from usearch.index import Index

import hotpath


class Source(IntEnum):
    """Where a candidate came from (the order is the blend priority)."""

    ANN = 0
    SESSION = 1
    TRENDING = 2
    FRESH = 3
    EDITORIAL = 4
    POPULAR = 5
    EXPLORE = 6


@dataclass(frozen=True)
class Quotas:
    ann: float = 0.7
    session: float = 0.1
    trending: float = 0.1
    fresh: float = 0.1
    session_neighbours: int = 50


@dataclass(frozen=True)
class Pool:
    items: np.ndarray  # u32 [k] item rows
    source: np.ndarray  # u8 [k], Source values
    score: np.ndarray  # f32 [k], the source's own score


def rank_scores(n: int) -> np.ndarray:
    """Scores for a ranked list with no scores of its own: 1, 1/2, 1/3, ..."""
    return (1.0 / np.arange(1, n + 1, dtype=np.float32)).astype(np.float32)


class CandidateGenerator:
    """Built once per bundle; :meth:`pool` is called once per request."""

    def __init__(
        self,
        index: Index,
        item_emb: np.ndarray,
        trending: np.ndarray,
        fresh: np.ndarray,
        quotas: Quotas,
    ):
        self.index = index
        self.item_emb = item_emb
        self.n_items = int(item_emb.shape[0])
        self.trending = np.ascontiguousarray(trending, dtype=np.uint32)
        self.fresh = np.ascontiguousarray(fresh, dtype=np.uint32)
        self._trending_scores = rank_scores(len(self.trending))
        self._fresh_scores = rank_scores(len(self.fresh))
        self.quotas = quotas
        self.blender = hotpath.Blender(self.n_items)

    def _search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.n_items)
        if k <= 0:
            return np.empty(0, np.uint32), np.empty(0, np.float32)
        matches = self.index.search(query, k)
        items = np.ascontiguousarray(matches.keys, dtype=np.uint32)
        # usearch's inner-product distance is 1 - dot.
        scores = np.ascontiguousarray(1.0 - matches.distances, dtype=np.float32)
        return items, scores

    def retrieve(self, user_emb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """ANN retrieval alone: (items u32, scores f32), best first."""
        return self._search(user_emb, k)

    def pool(
        self,
        user_emb: np.ndarray,
        recent_item: int | None,
        exclude: np.ndarray,
        pool_size: int,
    ) -> Pool:
        # Keep in step with node.pipeline (_retrieve, _blend): same depths, same quotas.
        q = self.quotas
        depth = pool_size + len(exclude)
        ann_items, ann_scores = self._search(user_emb, depth)
        sources = [(ann_items, ann_scores, round(q.ann * pool_size))]
        if recent_item is not None and recent_item >= 0:
            s_items, s_scores = self._search(self.item_emb[recent_item], q.session_neighbours + 1)
        else:
            s_items, s_scores = np.empty(0, np.uint32), np.empty(0, np.float32)
        sources.append((s_items, s_scores, round(q.session * pool_size)))
        trending, fresh = self.trending[:depth], self.fresh[:depth]
        sources.append((trending, self._trending_scores[: len(trending)], round(q.trending * pool_size)))
        sources.append((fresh, self._fresh_scores[: len(fresh)], round(q.fresh * pool_size)))
        items, source, score = self.blender.blend(sources, exclude, pool_size)
        return Pool(items, source, score)
