"""The node's candidate pools: one ANN search as deep as the pool plus the exclusions (the user retrieval),
session neighbours from the other search (item to item), cached."""

from __future__ import annotations

import gc
import weakref

import numpy as np

from trainer.candidates import CandidateGenerator, Quotas

N_ITEMS, DIM = 3000, 16


def exact_search(emb: np.ndarray, depths: list[int]):  # type: ignore[no-untyped-def]
    """Brute-force search; records the depths asked for."""

    def search(vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        depths.append(int(k))
        scores = emb @ vector
        k = min(int(k), len(emb))
        top = np.argsort(-scores, kind="stable")[:k]
        return top.astype(np.uint32), scores[top].astype(np.float32)

    return search


def generator(trending: int, fresh: int, user: list[int], items: list[int], seed: int = 0) -> CandidateGenerator:
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(N_ITEMS, DIM)).astype(np.float32)
    order = rng.permutation(N_ITEMS).astype(np.uint32)
    return CandidateGenerator(
        exact_search(emb, user), exact_search(emb, items), emb, order[:trending], order[-fresh:] if fresh else order[:0]
    )


def test_the_user_search_is_one_search_as_deep_as_the_pool_and_the_exclusions() -> None:
    user: list[int] = []
    items: list[int] = []
    gen = generator(800, 800, user, items)
    rng = np.random.default_rng(1)
    emb = rng.normal(size=DIM).astype(np.float32)
    exclude = rng.choice(N_ITEMS, 37, replace=False).astype(np.uint32)
    pool = gen.pool(emb, 5, exclude, 200)
    assert user == [CandidateGenerator.full_depth(200, 37)] == [237]
    assert items == [Quotas().session_neighbours + 1]
    assert len(pool.items) == 200 and not set(pool.items.tolist()) & set(exclude.tolist())
    # The pool's ANN part is the user's best items that are not excluded, in order.
    ann = pool.items[pool.source == 0]
    best = [i for i in np.argsort(-(gen.item_emb @ emb), kind="stable").tolist() if i not in set(exclude.tolist())]
    assert ann[: round(Quotas().ann * 200)].tolist() == best[: round(Quotas().ann * 200)]


def test_session_neighbours_are_cached_and_read_only() -> None:
    user: list[int] = []
    items: list[int] = []
    gen = generator(100, 100, user, items)
    emb = np.ones(DIM, np.float32)
    first = gen.sources(emb, 7, 0, 100, Quotas())
    second = gen.sources(emb, 7, 0, 100, Quotas())
    assert first[1][0] is second[1][0] and not first[1][0].flags.writeable
    assert items == [Quotas().session_neighbours + 1]


def test_a_dropped_generator_goes_with_its_last_reference_not_at_a_garbage_collection() -> None:
    # A generator holds a bundle's indexes: freed by a full collection instead, it would be freed at some
    # later request's expense (tens of ms with the GIL held at 1M items).
    gen = generator(10, 10, [], [])
    gen.sources(np.ones(DIM, np.float32), 7, 0, 50, Quotas())  # fills the session-neighbour cache
    freed = weakref.ref(gen)
    enabled = gc.isenabled()
    gc.disable()
    try:
        del gen
        assert freed() is None
    finally:
        if enabled:
            gc.enable()
