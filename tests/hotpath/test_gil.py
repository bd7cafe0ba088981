"""The hot-path calls release the GIL: calls from two threads overlap in time (see ``overlapping`` in
conftest.py for why that proves it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hotpath import Assembler, Reranker, write_item_rows
from tests.hotpath.conftest import overlapping

N_CANDIDATES = 300_000
CALLS_PER_THREAD = 4
ROUNDS = 5


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

    assert overlapping(call, ROUNDS, CALLS_PER_THREAD), f"no two assemble calls overlapped in {ROUNDS} rounds"


def ticked_early(construct: Callable[[], object], fraction: float) -> bool:
    """Whether a ticker thread (sleeping 0.5 ms between ticks, needing the GIL for each) ticked during the
    first ``fraction`` of one of ``ROUNDS`` calls of ``construct``: the copy at its start runs with the GIL
    released, not only the work after it."""
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
            construct()
            end = time.perf_counter()
            if any(start < t < start + fraction * (end - start) for t in ticks):
                return True
    finally:
        stop.set()
        thread.join()
    return False


def test_assembler_construction_copies_the_table_without_the_gil(
    rng: np.random.Generator, make_items: Callable[..., tuple], no_forced_switches: None
) -> None:
    items = make_items(rng, n_items=600_000, item_dim=8, emb_dim=16, n_genres=4)
    assert Assembler(*items).n_items == 600_000
    assert ticked_early(lambda: Assembler(*items), 0.5), "no tick in the first half: the copy seems to hold the GIL"


def test_reranker_construction_copies_the_genres_without_the_gil(
    rng: np.random.Generator, no_forced_switches: None
) -> None:
    """The bundle's genre column is a memory-mapped file: a page faulted in from disk while the copy held the
    GIL would stall every request thread. (Held, the copy was the first 40% of a construction here: the
    ticker's first tick came 39 ms into 95.)"""
    genres = rng.integers(0, 20, 40_000_000).astype(np.uint16)
    assert Reranker(genres).n_items == len(genres)
    assert ticked_early(lambda: Reranker(genres), 0.25), "no tick in the first quarter: the copy seems to hold the GIL"


def test_assembler_open_maps_and_checks_the_rows_without_the_gil(
    rng: np.random.Generator, make_items: Callable[..., tuple], no_forced_switches: None, tmp_path: Path
) -> None:
    """Two threads opening a large item rows file overlap: the map and the checks of every row (its
    first_ts) run with the GIL released."""
    items = make_items(rng, n_items=600_000, item_dim=8, emb_dim=16, n_genres=4)
    path = tmp_path / "item_rows.npy"
    write_item_rows(path, *items)

    def call() -> object:
        return Assembler.open(path, 16, 4, 8)

    assert overlapping(call, ROUNDS, CALLS_PER_THREAD), f"no two Assembler.open calls overlapped in {ROUNDS} rounds"
