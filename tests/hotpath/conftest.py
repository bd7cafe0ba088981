"""Shared random inputs for the hot-path binding tests."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import pytest

DAY = 86_400.0
NOW = 1.7e9

ItemTable = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def random_items(
    rng: np.random.Generator,
    n_items: int,
    item_dim: int = 5,
    emb_dim: int = 8,
    n_genres: int = 4,
) -> ItemTable:
    """(item_dense, item_emb, item_genre, item_first_ts), some times unknown or in the future."""
    first_ts = NOW - rng.uniform(-5 * DAY, 400 * DAY, n_items)
    first_ts[rng.random(n_items) < 0.2] = -1.0
    return (
        rng.standard_normal((n_items, item_dim), dtype=np.float32),
        rng.standard_normal((n_items, emb_dim), dtype=np.float32),
        rng.random((n_items, n_genres), dtype=np.float32),
        first_ts,
    )


@pytest.fixture
def make_items() -> Callable[..., ItemTable]:
    """Factory of random item tables (see ``random_items``)."""
    return random_items


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the test's id, so failures reproduce."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
