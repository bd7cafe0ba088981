"""Pure NumPy reference of the hot-path calls, for tests and benchmarks.

Each function takes the constructor arguments of the Rust class first, then
the arguments of its call, and returns what the Rust call returns. The
semantics are the documented ones, written to be read: vectorized where NumPy
can, loops only where the algorithm is sequential. Inputs are assumed valid.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

__all__ = ["SplitMix64", "assemble", "blend", "ivf_search", "rerank"]

F32 = npt.NDArray[np.float32]
U32 = npt.NDArray[np.uint32]

_DAY = 86_400.0
_MASK = (1 << 64) - 1


def _days_since(now_ts: float, ts: npt.NDArray[np.float64]) -> F32:
    """ln(1 + max(0, now - ts) / day) in float64, -1 where ts < 0, as float32."""
    days = np.log1p(np.maximum(0.0, now_ts - ts) / _DAY)
    return np.where(ts < 0, -1.0, days).astype(np.float32)


def _ordered_dot(user: F32, items: F32) -> F32:
    """Row-wise dot in float32 (BLAS order; the Rust core sums in 8 lanes, equal within rounding)."""
    return np.asarray(items @ user, dtype=np.float32)


def assemble(
    item_dense: F32,
    item_emb: F32,
    item_genre: F32,
    item_first_ts: npt.NDArray[np.float64],
    user_dense: F32,
    user_emb: F32,
    user_genre: F32,
    user_last_ts: float,
    now_ts: float,
    context: F32,
    candidates: U32,
) -> F32:
    """Rows ``[user_dense | item_dense[i] | cross(4) | context]``."""
    n, u, i = len(candidates), len(user_dense), item_dense.shape[1]
    out = np.empty((n, u + i + 4 + len(context)), dtype=np.float32)
    x = u + i  # first cross column
    out[:, :u] = user_dense
    out[:, u:x] = item_dense[candidates]
    out[:, x] = _ordered_dot(user_emb, item_emb[candidates])
    out[:, x + 1] = _ordered_dot(user_genre, item_genre[candidates])
    out[:, x + 2] = _days_since(now_ts, np.array([user_last_ts]))[0]
    out[:, x + 3] = _days_since(now_ts, item_first_ts[candidates])
    out[:, x + 4 :] = context
    return out


def blend(
    sources: Iterable[tuple[U32, F32, int]],
    exclude: U32,
    pool_size: int,
) -> tuple[U32, npt.NDArray[np.uint8], F32]:
    """Quotas first (pass 1), then top up from where each source stopped (pass 2)."""
    lists = [(items.tolist(), scores.tolist(), quota) for items, scores, quota in sources]
    seen = set(exclude.tolist())
    taken: list[tuple[int, int, float]] = []
    cursors = [0] * len(lists)

    def walk(s: int, limit: int) -> None:
        items, scores, _ = lists[s]
        took = 0
        while took < limit and len(taken) < pool_size and cursors[s] < len(items):
            j = cursors[s]
            cursors[s] += 1
            if items[j] not in seen:
                seen.add(items[j])
                taken.append((items[j], s, scores[j]))
                took += 1

    for s, (_, _, quota) in enumerate(lists):
        walk(s, quota)
    for s in range(len(lists)):
        walk(s, pool_size)
    items, source, score = zip(*taken, strict=False) if taken else ((), (), ())
    return (
        np.array(items, dtype=np.uint32),
        np.array(source, dtype=np.uint8),
        np.array(score, dtype=np.float32),
    )


def _best_first(scores: npt.NDArray[np.floating], keys: npt.NDArray[np.integer]) -> npt.NDArray[np.intp]:
    """Positions ordered by score descending, then key ascending."""
    return np.lexsort((keys, -scores.astype(np.float64)))


def ivf_search(
    centroids: F32,
    offsets: U32,
    items: U32,
    codes: npt.NDArray[np.int8],
    scale: F32,
    vectors: F32,
    vector: F32,
    k: int,
    nprobe: int,
    rescore: int,
) -> tuple[U32, F32]:
    """The ``nprobe`` best lists by centroid score, their items' approximate scores ``codes . (vector * scale)``,
    the ``max(rescore, k)`` best of those re-scored exactly, the best ``k`` (ties by list, row or item)."""
    k = min(k, len(items))
    lists = _best_first(centroids @ vector, np.arange(len(centroids)))[: min(nprobe, len(centroids))]
    rows = np.concatenate([np.arange(offsets[lo], offsets[lo + 1]) for lo in lists])
    approx = codes[rows].astype(np.float32) @ (vector * scale)
    kept = items[rows[_best_first(approx, rows)[: max(rescore, k)]]]
    exact = np.asarray(vectors[kept] @ vector, dtype=np.float32)
    order = _best_first(exact, kept)[:k]
    return kept[order].astype(np.uint32), exact[order]


class SplitMix64:
    """The standard SplitMix64 generator."""

    def __init__(self, seed: int) -> None:
        self.state = seed & _MASK

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def next_f64(self) -> float:
        return (self.next_u64() >> 11) * 2.0**-53


def _rank_within_group(groups: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
    """For each element, how many earlier elements share its group."""
    by_group = np.argsort(groups, kind="stable")
    sorted_groups = groups[by_group]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(groups)]))
    rank = np.empty(len(groups), dtype=np.int64)
    rank[by_group] = np.arange(len(groups)) - run_start
    return rank


def rerank(
    item_primary_genre: npt.NDArray[np.uint16],
    candidates: U32,
    scores: F32,
    n_results: int,
    max_per_genre: int,
    epsilon: float,
    seed: int,
) -> tuple[U32, npt.NDArray[np.bool_]]:
    """Score order, per-genre cap, then seeded epsilon exploration."""
    k = min(n_results, len(candidates))
    # Descending, ties by position (stable), NaN last (argsort puts NaN last).
    order = np.argsort(-scores, kind="stable")
    if max_per_genre <= 0:
        chosen = order[:k]
    else:
        # Greedy: the first max_per_genre of each genre in order are taken.
        eligible = _rank_within_group(item_primary_genre[candidates[order]]) < max_per_genre
        chosen = order[eligible][:k]
        chosen = np.concatenate([chosen, order[~eligible][: k - len(chosen)]])

    slots = chosen.tolist()
    rest = order[~np.isin(order, chosen)].tolist()
    explored = [False] * k
    rng = SplitMix64(seed)
    for i in range(k):
        if rng.next_f64() < epsilon and rest:
            j = rng.next_u64() % len(rest)
            slots[i], rest[j] = rest[j], slots[i]
            explored[i] = True
    return np.array(slots, dtype=np.uint32), np.array(explored, dtype=bool)
