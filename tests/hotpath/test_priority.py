"""``hotpath.bulk_niceness``: a thread's calls into the hot path run their work on a thread of the Rust core's own,
that much lower in CPU priority, and the calling thread keeps its own (it is the one that takes the GIL back)."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import hotpath
from hotpath import ShapeError

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="a niceness per thread is Linux's")


@pytest.fixture(autouse=True)
def restore_bulk_niceness() -> object:
    yield
    hotpath.bulk_niceness(0)


def own_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.parametrize("niceness", [-1, 20, 1000])
def test_a_niceness_out_of_range_is_refused_naming_it(niceness: int) -> None:
    with pytest.raises(ShapeError, match=rf"^niceness: must be in \[0, 19\], got {niceness}$"):
        hotpath.bulk_niceness(niceness)
    assert hotpath.bulk_niceness(0) == 0, "a refused value was kept"


def test_it_returns_the_value_it_replaces_and_is_the_calling_threads_own() -> None:
    assert hotpath.bulk_niceness(7) == 0
    other: list[int] = []
    thread = threading.Thread(target=lambda: other.append(hotpath.bulk_niceness(3)))
    thread.start()
    thread.join()
    assert other == [0], "another thread saw this thread's value"
    assert hotpath.bulk_niceness(0) == 7, "another thread's value replaced this thread's"


def niced_threads(base: int) -> set[int]:
    """This process's threads named ``bulk-niced`` (their niceness, read from /proc) other than at ``base``."""
    found = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            if (task / "comm").read_text().strip() != "bulk-niced":
                continue
            # Field 19 of stat is the niceness; the name (field 2) has no spaces here.
            found.add(int((task / "stat").read_text().split()[18]))
        except (OSError, IndexError, ValueError):  # the thread ended meanwhile
            continue
    return found - {base}


def test_the_work_runs_on_a_thread_of_its_own_that_much_lower(tmp_path: Path) -> None:
    """While a prefault runs with bulk_niceness 5, a watcher sees a thread ``bulk-niced`` at the caller's niceness
    plus 5; the caller's own niceness never changes. With bulk_niceness 0 no such thread appears."""
    path = tmp_path / "table.npy"
    np.save(path, np.ones(64 << 20, np.uint8))  # 64 MiB: a prefault of some ms
    table = np.load(path, mmap_mode="r")
    base = own_niceness()
    seen: set[int] = set()
    callers: set[int] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.update(niced_threads(base))
            time.sleep(0.0002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(20):
            hotpath.release_mappings(tmp_path, 4096)  # in 4 KiB pieces: longer, and each call starts cold
            hotpath.prefault_mappings(tmp_path, False, 4096)
            callers.add(own_niceness())
        with_zero = set(seen)
        hotpath.bulk_niceness(5)
        for _ in range(20):
            hotpath.release_mappings(tmp_path, 4096)
            done = hotpath.prefault_mappings(tmp_path, False, 4096)
            callers.add(own_niceness())
            if seen - with_zero:
                break
    finally:
        stop.set()
        watcher.join()
    assert [(Path(p).name, errno) for p, _, _, errno in done] == [("table.npy", 0)]
    assert with_zero == set(), "with bulk_niceness 0 the work ran on a thread of its own"
    assert seen == {min(base + 5, 19)}, f"no bulk-niced thread at {base} + 5 seen: {seen}"
    assert callers == {base}, "the calling thread's niceness changed"
    del table
