"""Candidate generation, shared by the trainer and the node.

The ranker is trained on the very candidate pools the node will score, so
both use :class:`CandidateGenerator`: ANN retrieval with the user's
embedding (the IVF index, :mod:`trainer.ivf`: deep searches cost about the
same as shallow ones), session continuation (neighbours of the most recent
item, from the usearch graph: shallow, and cached), and
the trending and fresh lists, blended by the Rust :class:`hotpath.Blender`
with per-source quotas, minus what the user has seen and what the request
excludes.

The ANN search goes as deep as the whole pool plus what may be excluded (the
blend takes ANN hits up to the ANN quota, then the other sources' quotas, then
fills from ANN first), in one search: the IVF index's cost barely grows with
its depth (BENCHMARKS.md, "IVF"), so the shallow-first search that the graph
index needed is gone. Session neighbours of an item are cached per generator
(one bundle): popular items are many users' latest item.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from usearch.index import Index

import hotpath

# The sources, in blend priority order; a pool's ``source`` indexes this tuple.
SOURCE_NAMES = ("ann", "session", "trending", "fresh")

Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
Sources = list[tuple[np.ndarray, np.ndarray, int]]
_EMPTY_U32 = np.empty(0, np.uint32)
_EMPTY_F32 = np.empty(0, np.float32)
# Items whose session neighbours a generator keeps (each about 0.6 KB).
SESSION_CACHE_ITEMS = 32_768


@dataclass(frozen=True)
class Quotas:
    """Shares of the pool each source fills first (the rest goes by priority)."""

    ann: float = 0.7
    session: float = 0.1
    trending: float = 0.1
    fresh: float = 0.1
    session_neighbours: int = 50


@dataclass(frozen=True)
class Pool:
    items: np.ndarray  # u32 [k] item rows, in blend order
    source: np.ndarray  # u8 [k], index into SOURCE_NAMES
    score: np.ndarray  # f32 [k], the source's own score


def rank_scores(n: int) -> np.ndarray:
    """Scores for a ranked list with no scores of its own: 1, 1/2, 1/3, ..."""
    return (1.0 / np.arange(1, n + 1, dtype=np.float32)).astype(np.float32)


def index_search(index: Index, lock: threading.Lock | None = None) -> Search:
    """``search(vector, k) -> (items u32, scores f32)``; usearch's ip distance is 1 - dot."""
    n = len(index)

    def search(vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(int(k), n)
        if k <= 0:
            return _EMPTY_U32, _EMPTY_F32
        if lock is None:
            matches = index.search(vector, k)
        else:
            with lock:
                matches = index.search(vector, k)
        return (
            np.ascontiguousarray(matches.keys, dtype=np.uint32),
            np.ascontiguousarray(1.0 - matches.distances, dtype=np.float32),
        )

    return search


def ann_search(index: hotpath.AnnIndex) -> Search:
    """:func:`index_search`'s contract over a :class:`hotpath.AnnIndex`: the same keys and scores on
    the same file, searched with the GIL released and from several threads at once (no lock)."""

    def search(vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        # A negative depth is an empty result, as for index_search; the vector is cast only if it is not f32.
        return index.search(np.ascontiguousarray(vector, dtype=np.float32), max(int(k), 0))

    return search


def _search_neighbours(neighbours: Search, item_emb: np.ndarray, item: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    items, scores = neighbours(item_emb[item], k)
    items.flags.writeable = False  # shared by every request whose latest item this is
    scores.flags.writeable = False
    return items, scores


class CandidateGenerator:
    """Built once per bundle; :meth:`sources` and :meth:`blend` run once per request."""

    def __init__(
        self, search: Search, neighbours: Search, item_emb: np.ndarray, trending: np.ndarray, fresh: np.ndarray
    ):
        """``search``: the user retrieval (the IVF index); ``neighbours``: item-to-item (the usearch graph)."""
        self.search = search
        self.neighbours = neighbours
        self.item_emb = item_emb
        self.n_items = int(item_emb.shape[0])
        self.trending = np.ascontiguousarray(trending, dtype=np.uint32)
        self.fresh = np.ascontiguousarray(fresh, dtype=np.uint32)
        self._trending_scores = rank_scores(len(self.trending))
        self._fresh_scores = rank_scores(len(self.fresh))
        self.blender = hotpath.Blender(self.n_items)
        # Cached over a function of the searches alone: a cache over a bound method would be a reference
        # cycle, and an unloaded bundle would then wait for a full garbage collection (tens of ms with the
        # GIL held, on whichever request thread triggers it) instead of going when its last reference does.
        self._neighbours = functools.lru_cache(maxsize=SESSION_CACHE_ITEMS)(
            functools.partial(_search_neighbours, neighbours, item_emb)
        )

    @staticmethod
    def full_depth(pool_size: int, n_exclude: int) -> int:
        """The ANN depth that can fill the whole pool alone, whatever is excluded."""
        return pool_size + n_exclude

    def sources(
        self,
        user_emb: np.ndarray,
        recent_item: int | None,
        n_exclude: int,
        pool_size: int,
        quotas: Quotas,
    ) -> Sources:
        """Each source's ranked list and quota, in SOURCE_NAMES order; ANN searched :meth:`full_depth` deep."""
        depth = self.full_depth(pool_size, n_exclude)
        ann = self.search(user_emb, depth)
        if recent_item is not None and recent_item >= 0:
            session = self._neighbours(int(recent_item), quotas.session_neighbours + 1)
        else:
            session = (_EMPTY_U32, _EMPTY_F32)
        trending, fresh = self.trending[:depth], self.fresh[:depth]
        return [
            (*ann, round(quotas.ann * pool_size)),
            (*session, round(quotas.session * pool_size)),
            (trending, self._trending_scores[: len(trending)], round(quotas.trending * pool_size)),
            (fresh, self._fresh_scores[: len(fresh)], round(quotas.fresh * pool_size)),
        ]

    def blend(self, sources: Sources, exclude: np.ndarray, pool_size: int) -> Pool:
        items, source, score = self.blender.blend(sources, np.ascontiguousarray(exclude, np.uint32), pool_size)
        return Pool(items, source, score)

    def pool(
        self,
        user_emb: np.ndarray,
        recent_item: int | None,
        exclude: np.ndarray,
        pool_size: int,
        quotas: Quotas | None = None,
    ) -> Pool:
        sources = self.sources(user_emb, recent_item, len(exclude), pool_size, quotas or Quotas())
        return self.blend(sources, exclude, pool_size)

    def retrieve(self, user_emb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """ANN retrieval alone: (items u32, scores f32), best first."""
        return self.search(user_emb, k)
