"""Per-request deadlines and the stage budgets of the degradation ladder.

A request's budget is its own gRPC deadline, capped at the node's budget
(``Settings.budget_ms``). Before each stage the pipeline asks whether the
stage still fits, from a running estimate of what the stage costs; a stage
that does not fit is skipped for the rung below it. The ranker, the one
stage whose cost can jump (a slow model, a loaded machine), runs under a
watchdog that cancels it (onnxruntime's ``RunOptions.terminate``) when its
share of the budget runs out, so that abandoned work does not go on in the
background.

A stage skipped because its estimate does not fit is measured again
(:class:`Probes`), so that one stall does not move a node down the ladder
for good: the ranker, which the watchdog can cancel, by one request per
``PROBE_INTERVAL_S`` that runs it anyway, cut short at what a run that fits
could take; retrieval, which cannot be cancelled, by a measurement on a
background thread, off every request's path. A probe's measurement replaces
the estimate (an EWMA would need dozens of probes to forget a stall).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import onnxruntime as ort

# What the last rung (a popularity list) needs to answer, with margin.
POPULARITY_RESERVE_S = 0.5e-3
# Estimates are multiplied by this before deciding that a stage fits.
SAFETY = 2.0
EWMA_ALPHA = 0.1
# A stage skipped for its estimate is measured again at most this often.
PROBE_INTERVAL_S = 1.0
# The watchdog cancels a run this much before its cut-off: it needs the GIL to wake, and a cancelled
# run needs a moment to notice.
WATCHDOG_SLACK_S = 1.0e-3

log = logging.getLogger(__name__)


class Deadline:
    """The end of a request's budget on the monotonic clock."""

    __slots__ = ("end", "start")

    def __init__(self, budget_s: float, start: float | None = None):
        self.start = time.perf_counter() if start is None else start
        self.end = self.start + budget_s

    def remaining(self) -> float:
        return self.end - time.perf_counter()

    def expired(self) -> bool:
        return time.perf_counter() >= self.end

    def fits(self, estimate_s: float, reserve_s: float = POPULARITY_RESERVE_S) -> bool:
        """Whether a stage estimated at ``estimate_s`` fits, keeping ``reserve_s`` for the fallback."""
        return self.remaining() >= SAFETY * estimate_s + reserve_s


def request_budget(time_remaining_s: float | None, budget_ms: float) -> float:
    """The budget of one request: its own deadline, capped at the node's budget."""
    cap = budget_ms / 1000.0
    return cap if time_remaining_s is None else min(cap, max(0.0, time_remaining_s))


@dataclass
class StageCosts:
    """Running (EWMA) estimates of each stage's wall time, in seconds."""

    estimates: dict[str, float] = field(default_factory=dict)

    def estimate(self, stage: str) -> float:
        return self.estimates.get(stage, 0.0)

    def observe(self, stage: str, seconds: float) -> None:
        old = self.estimates.get(stage)
        self.estimates[stage] = seconds if old is None else old + EWMA_ALPHA * (seconds - old)

    def reset(self, stage: str, seconds: float) -> None:
        """Replace the estimate with a fresh measurement (a probe's, after the stage was skipped)."""
        self.estimates[stage] = seconds


class Probes:
    """When to measure a skipped stage again, and background measurements for stages that cannot be cancelled.

    ``attempted(stage)`` records a run; ``due(stage)`` is true, and claims the probe, when the stage has not
    run nor been probed for ``interval_s``. ``measure`` runs one measurement on a background thread (one at
    a time; a measurement offered while one runs is dropped) and gives its wall time to ``costs.reset``.
    """

    def __init__(self, costs: StageCosts, interval_s: float = PROBE_INTERVAL_S):
        self.costs = costs
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

    def attempted(self, stage: str) -> None:
        self._last[stage] = time.monotonic()

    def due(self, stage: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(stage, -float("inf")) < self.interval_s:
                return False
            self._last[stage] = now
            return True

    def measure(self, stage: str, run: Callable[[], object]) -> None:
        """Time ``run()`` off the request path; its wall time becomes ``stage``'s estimate (unless it raises)."""
        with self._lock:
            if self._pending is not None and not self._pending.done():
                return
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgerank-probe")
            self._pending = self._executor.submit(self._measure, stage, run)

    def _measure(self, stage: str, run: Callable[[], object]) -> None:
        started = time.perf_counter()
        try:
            run()
        except Exception as error:
            log.warning("probe of stage %s failed: %s: %s", stage, type(error).__name__, error)
            return
        self.costs.reset(stage, time.perf_counter() - started)

    def join(self, timeout_s: float | None = None) -> None:
        """Wait for the background measurement in progress, if any (tests)."""
        pending = self._pending
        if pending is not None:
            pending.exception(timeout_s)


class Watchdog:
    """One thread that cancels ranker runs whose deadline has passed.

    A run that ends calls :meth:`release`; its entry stays in the heap, dead, and the thread drops dead
    entries without waiting for their deadlines. The thread is woken only when a new run's deadline is
    earlier than the one it waits for, so a node whose runs finish in time wakes it about once per budget,
    not once per request (each wake takes the GIL from a request thread).
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, ort.RunOptions]] = []
        self._live: set[int] = set()
        self._waiting_until = float("inf")
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="edgerank-watchdog", daemon=True)
        self._thread.start()

    def guard(self, deadline_at: float) -> ort.RunOptions:
        """RunOptions for one ranker run, terminated at ``deadline_at`` (perf_counter time) unless released."""
        options = ort.RunOptions()
        seq = next(self._seq)
        with self._cond:
            heapq.heappush(self._heap, (deadline_at, seq, options))
            self._live.add(id(options))
            if deadline_at < self._waiting_until:
                self._cond.notify()
        return options

    def release(self, options: ort.RunOptions) -> None:
        """The run of ``options`` ended: do not cancel it."""
        with self._cond:
            self._live.discard(id(options))

    def _loop(self) -> None:
        with self._cond:
            while True:
                heap = self._heap
                while heap and id(heap[0][2]) not in self._live:
                    heapq.heappop(heap)  # released: nothing to cancel
                if not heap:
                    self._waiting_until = float("inf")
                    self._cond.wait()
                    continue
                at, _, options = heap[0]
                wait = at - time.perf_counter()
                if wait > 0:
                    self._waiting_until = at
                    self._cond.wait(wait)
                    continue
                heapq.heappop(heap)
                self._live.discard(id(options))
                options.terminate = True
