"""Shorter GIL time slices while a bundle loads and warms up.

A node loads and warms a new version in its assignment thread, beside the event-loop thread that serves
(:meth:`node.server.Node.prepare_bundle`). Both need the GIL. A thread that wants it while the other holds
it waits up to ``sys.getswitchinterval()`` (5 ms by default) before the holder is asked to let go, and a
``Rank`` takes and gives it back several times (around each Rust and onnxruntime call, and for gRPC).
With 0.5 ms slices, each wait is that much at most; the cost is more frequent switching while both
threads run Python, for the length of a load. Measured in-process (MovieLens bundle, one run of
4 x 3 s each) with the pipeline warm-up run back to back beside 100 Rank/s: P99.9 12.3 ms with 5 ms
slices, 9.6 ms with 0.5 ms (BENCHMARKS, replication, session (10)).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

LOAD_SWITCH_INTERVAL_S = 0.0005

_lock = threading.Lock()
_depth = 0
_saved = 0.0


@contextmanager
def short_gil_slices(interval_s: float = LOAD_SWITCH_INTERVAL_S) -> Iterator[None]:
    """``sys.setswitchinterval(interval_s)`` for the block (if shorter than the current one); nested or
    concurrent blocks share it, and the last one out restores the interval found by the first."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_saved, interval_s))
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                sys.setswitchinterval(_saved)
