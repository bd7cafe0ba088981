"""The hot-path calls release the GIL: calls from two threads overlap in time.

The switch interval is raised for the test so that the interpreter never takes
the GIL away from a thread on its own: another thread can then only run while
the first one has released the GIL voluntarily, and with the GIL held for the
whole call two call intervals could never overlap.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from hotpath import Assembler

N_CANDIDATES = 300_000
CALLS_PER_THREAD = 4
ROUNDS = 5

Interval = tuple[float, float]


@pytest.fixture
def no_forced_switches() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def timed_calls(call: Callable[[], object], barrier: threading.Barrier, out: list[Interval]) -> None:
    barrier.wait()
    for _ in range(CALLS_PER_THREAD):
        start = time.perf_counter()
        call()
        out.append((start, time.perf_counter()))


def overlap(a: list[Interval], b: list[Interval]) -> bool:
    return any(s1 < e2 and s2 < e1 for s1, e1 in a for s2, e2 in b)


def test_assemble_calls_from_two_threads_overlap(
    rng: np.random.Generator, make_items: Callable[..., tuple], no_forced_switches: None
) -> None:
    items = make_items(rng, n_items=10_000, item_dim=25, emb_dim=64, n_genres=20)
    assembler = Assembler(*items)
    args = (
        rng.standard_normal(24, dtype=np.float32),
        rng.standard_normal(64, dtype=np.float32),
        rng.random(20, dtype=np.float32),
        1.69e9,
        1.7e9,
        rng.standard_normal(4, dtype=np.float32),
        rng.integers(0, 10_000, N_CANDIDATES).astype(np.uint32),
    )

    def call() -> object:
        return assembler.assemble(*args)

    for _ in range(ROUNDS):
        barrier = threading.Barrier(2)
        intervals: tuple[list[Interval], list[Interval]] = ([], [])
        threads = [threading.Thread(target=timed_calls, args=(call, barrier, out)) for out in intervals]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(len(out) == CALLS_PER_THREAD for out in intervals)
        if overlap(*intervals):
            return
    pytest.fail(f"no two assemble calls overlapped in {ROUNDS} rounds: the GIL seems held")


def test_assembler_construction_copies_the_table_without_the_gil(
    rng: np.random.Generator, make_items: Callable[..., tuple], no_forced_switches: None
) -> None:
    """A ticker thread (sleeping 0.5 ms between ticks, needing the GIL for each)
    ticks during the first half of a large construction: the copy into the
    packed table runs with the GIL released, not only the checks after it."""
    items = make_items(rng, n_items=600_000, item_dim=8, emb_dim=16, n_genres=4)
    ticks: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            time.sleep(0.0005)
            ticks.append(time.perf_counter())

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        for _ in range(ROUNDS):
            time.sleep(0.005)  # the ticker is sleeping or waiting for the GIL
            start = time.perf_counter()
            assembler = Assembler(*items)
            end = time.perf_counter()
            assert assembler.n_items == 600_000
            if any(start < t < (start + end) / 2 for t in ticks):
                return
    finally:
        stop.set()
        thread.join()
    pytest.fail(f"no tick in the first half of {ROUNDS} constructions: the copy seems to hold the GIL")
