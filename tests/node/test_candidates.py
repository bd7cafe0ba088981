"""The node's candidate pools: a shallow first ANN search, deepened only when the blend used it up, gives
the pool a full-depth search gives."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.candidates import CandidateGenerator, Quotas, member

N_ITEMS, DIM = 3000, 16


def exact_search(emb: np.ndarray, depths: list[int]):  # type: ignore[no-untyped-def]
    """Brute-force search (deterministic, so a shallow search is a prefix of a deeper one); records depths."""

    def search(vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        depths.append(int(k))
        scores = emb @ vector
        k = min(int(k), len(emb))
        top = np.argsort(-scores, kind="stable")[:k]
        return top.astype(np.uint32), scores[top].astype(np.float32)

    return search


def generator(trending: int, fresh: int, depths: list[int], seed: int = 0) -> CandidateGenerator:
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(N_ITEMS, DIM)).astype(np.float32)
    order = rng.permutation(N_ITEMS).astype(np.uint32)
    return CandidateGenerator(exact_search(emb, depths), emb, order[:trending], order[-fresh:] if fresh else order[:0])


def full_depth_pool(gen: CandidateGenerator, emb: np.ndarray, recent: int | None, exclude: np.ndarray, pool: int):  # type: ignore[no-untyped-def]
    sources = gen.sources(emb, recent, len(exclude), pool, Quotas())  # full depth by default
    return gen.blend(sources, exclude, pool)


@pytest.mark.parametrize(("trending", "fresh"), [(800, 800), (60, 0), (0, 0)])
def test_the_pool_is_the_full_depth_pool(trending: int, fresh: int) -> None:
    depths: list[int] = []
    gen = generator(trending, fresh, depths)
    rng = np.random.default_rng(1)
    deepened = 0
    for _ in range(60):
        emb = rng.normal(size=DIM).astype(np.float32)
        # Exclusions that hit the ANN list: some of the user's nearest items, and random ones.
        near = np.argsort(-(gen.item_emb @ emb))[: rng.integers(0, 40)]
        exclude = np.unique(np.concatenate([near, rng.integers(0, N_ITEMS, rng.integers(0, 60))])).astype(np.uint32)
        recent = int(rng.integers(0, N_ITEMS)) if rng.random() < 0.8 else None
        pool_size = int(rng.choice([50, 200, 500]))
        expected = full_depth_pool(gen, emb, recent, exclude, pool_size)
        depths.clear()
        got = gen.pool(emb, recent, exclude, pool_size)
        ann_depths = [d for d in depths if d != Quotas().session_neighbours + 1]
        deepened += len(ann_depths) > 1
        np.testing.assert_array_equal(got.items, expected.items)
        np.testing.assert_array_equal(got.source, expected.source)
        np.testing.assert_array_equal(got.score, expected.score)
    if trending == 0:
        # ANN fills what the session neighbours leave: the first search is often used up, and deepened.
        assert deepened >= 20
    if trending == 800:
        # The other sources fill their quotas: the first search almost always suffices.
        assert deepened <= 6


def test_the_first_search_is_shallower_than_the_pool() -> None:
    q = Quotas()
    assert CandidateGenerator.first_depth(500, 20, q) == 350 + 50 + 20
    assert CandidateGenerator.full_depth(500, 20) == 520
    assert CandidateGenerator.first_depth(10, 0, Quotas(ann=1.0)) == 10  # never deeper than the full depth


def test_session_neighbours_are_cached_and_read_only() -> None:
    depths: list[int] = []
    gen = generator(100, 100, depths)
    emb = np.ones(DIM, np.float32)
    first = gen.sources(emb, 7, 0, 100, Quotas())
    second = gen.sources(emb, 7, 0, 100, Quotas())
    assert first[1][0] is second[1][0] and not first[1][0].flags.writeable
    assert depths.count(Quotas().session_neighbours + 1) == 1


@pytest.mark.parametrize("size", [0, 1, 7, 500])
def test_member_is_isin(size: int) -> None:
    rng = np.random.default_rng(size)
    of = rng.integers(0, 1000, size).astype(np.uint32)  # duplicates included
    values = rng.integers(0, 1000, 300).astype(np.uint32)
    values[:5] = [0, 999, *of[:3]] if size >= 3 else [0, 999, 1, 2, 3]
    np.testing.assert_array_equal(member(values, of), np.isin(values, of))
    assert member(values[:0], of).shape == (0,)
