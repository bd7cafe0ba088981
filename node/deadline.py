"""Per-request deadlines and the stage budgets of the degradation ladder.

A request's budget is its own gRPC deadline, capped at the node's budget
(``Settings.budget_ms``). Before each stage the pipeline asks whether the
stage still fits, from a running estimate of what the stage costs; a stage
that does not fit is skipped for the rung below it. The ranker, the one
stage whose cost can jump (a slow model, a loaded machine), runs under a
watchdog that cancels it (onnxruntime's ``RunOptions.terminate``) when its
share of the budget runs out, so that abandoned work does not go on in the
background.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from dataclasses import dataclass, field

import onnxruntime as ort

# What the last rung (a popularity list) needs to answer, with margin.
POPULARITY_RESERVE_S = 0.5e-3
# Estimates are multiplied by this before deciding that a stage fits.
SAFETY = 2.0
EWMA_ALPHA = 0.1


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


class Watchdog:
    """One thread that cancels ranker runs whose deadline has passed."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, ort.RunOptions]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="edgerank-watchdog", daemon=True)
        self._thread.start()

    def guard(self, deadline_at: float) -> ort.RunOptions:
        """RunOptions for one ranker run, terminated at ``deadline_at`` (perf_counter time)."""
        options = ort.RunOptions()
        with self._cond:
            heapq.heappush(self._heap, (deadline_at, next(self._seq), options))
            if self._heap[0][2] is options:
                self._cond.notify()
        return options

    def _loop(self) -> None:
        with self._cond:
            while True:
                if not self._heap:
                    self._cond.wait()
                    continue
                at, _, options = self._heap[0]
                wait = at - time.perf_counter()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                # Terminating a finished run is harmless: the flag is only read during a run.
                options.terminate = True
