"""The hot-path calls release the GIL: calls from two threads overlap in time (see ``overlapping`` in
conftest.py for why that proves it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hotpath import Assembler, write_item_rows
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
