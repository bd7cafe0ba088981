"""node.gil: short GIL slices for the length of a load, restored after, nested or concurrent."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from node.gil import LOAD_SWITCH_INTERVAL_S, short_gil_slices


@pytest.fixture(autouse=True)
def default_interval() -> Iterator[None]:
    saved = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    yield
    sys.setswitchinterval(saved)


def test_short_for_the_block_and_restored_after_an_error() -> None:
    with pytest.raises(RuntimeError), short_gil_slices():
        assert sys.getswitchinterval() == pytest.approx(LOAD_SWITCH_INTERVAL_S, rel=0.05)
        raise RuntimeError("a load that fails")
    assert sys.getswitchinterval() == pytest.approx(0.005, rel=0.05)


def test_nested_and_concurrent_blocks_restore_once_the_last_ends() -> None:
    inside, release = threading.Event(), threading.Event()

    def other_load() -> None:
        with short_gil_slices():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other_load)
    with short_gil_slices():
        thread.start()
        assert inside.wait(10)
        with short_gil_slices():
            pass
        assert sys.getswitchinterval() == pytest.approx(LOAD_SWITCH_INTERVAL_S, rel=0.05)
    assert sys.getswitchinterval() == pytest.approx(LOAD_SWITCH_INTERVAL_S, rel=0.05)  # the other load still runs
    release.set()
    thread.join(10)
    assert sys.getswitchinterval() == pytest.approx(0.005, rel=0.05)


def test_never_lengthens_a_shorter_interval() -> None:
    sys.setswitchinterval(0.0001)
    with short_gil_slices():
        assert sys.getswitchinterval() == pytest.approx(0.0001, rel=0.05)
    assert sys.getswitchinterval() == pytest.approx(0.0001, rel=0.05)
