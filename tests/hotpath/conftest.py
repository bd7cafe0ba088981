"""Shared random inputs for the hot-path binding tests, and the check that a call releases the GIL."""

from __future__ import annotations

import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator

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


# The GIL: with a switch interval so long that the interpreter never takes the GIL away from a thread on its
# own, another thread can run only while the first has released the GIL voluntarily; with the GIL held for
# the whole call, two calls' intervals could never overlap.
Interval = tuple[float, float]


@pytest.fixture
def no_forced_switches() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def overlapping(call: Callable[[], object], rounds: int = 5, calls: int = 4) -> bool:
    """Whether ``call`` from two threads at once ever overlapped in time, in up to ``rounds`` rounds of
    ``calls`` calls per thread (use with ``no_forced_switches``)."""
    for _ in range(rounds):
        barrier = threading.Barrier(2)
        intervals: tuple[list[Interval], list[Interval]] = ([], [])

        def timed(out: list[Interval], barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            for _ in range(calls):
                start = time.perf_counter()
                call()
                out.append((start, time.perf_counter()))

        threads = [threading.Thread(target=timed, args=(out,)) for out in intervals]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(len(out) == calls for out in intervals)
        a, b = intervals
        if any(s1 < e2 and s2 < e1 for s1, e1 in a for s2, e2 in b):
            return True
    return False
