"""The open-loop driver charges a stall to every request it delayed (no coordinated omission)."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from node.loadgen.driver import OK, Done, run_closed_loop, run_open_loop
from node.loadgen.schedule import poisson_schedule

STALL_S = 0.3


class StallingSender:
    """Answers at once, except that the first send blocks for STALL_S (a server that stalls)."""

    def __init__(self) -> None:
        self.calls = 0

    def send(self, request: Any, done: Done) -> None:
        self.calls += 1
        if self.calls == 1:
            time.sleep(STALL_S)
        done(OK, "FULL", 1.0)

    def call(self, request: Any) -> tuple[str, str, float | None]:
        self.send(request, lambda code, rung, pipeline_ms: None)
        return OK, "FULL", 1.0


class DelayedSender:
    """Answers each request after ``delay_s`` from another thread; the third fails."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.calls = 0

    def send(self, request: Any, done: Done) -> None:
        self.calls += 1
        code = "UNAVAILABLE" if self.calls == 3 else OK
        ok = code == OK
        threading.Timer(self.delay_s, done, args=(code, "FULL" if ok else "", 2.0 if ok else None)).start()

    def call(self, request: Any) -> tuple[str, str, float | None]:
        time.sleep(self.delay_s)
        return OK, "FULL", 2.0


def test_latency_counts_from_the_intended_send_time() -> None:
    rate, duration = 1000.0, 0.8
    offsets = poisson_schedule(rate, duration, seed=2)
    r = run_open_loop(StallingSender(), [None], offsets, time.monotonic() + 0.05)
    assert r.completed == r.sent == len(offsets)
    # Requests meant to leave during the stall left late, and their latency includes the wait.
    delayed = int(np.sum(offsets < offsets[0] + STALL_S))
    assert r.histogram.max_ms() >= STALL_S * 1000 * 0.95
    assert r.histogram.count_between_ms(STALL_S * 1000 / 2, float("inf")) >= 0.3 * delayed
    assert r.send_lag_max_ms >= STALL_S * 1000 * 0.9
    # The median request came after the stall and saw none of it.
    assert r.histogram.percentile_ms(50) < 50


def test_closed_loop_hides_the_stall_that_open_loop_shows() -> None:
    closed = run_closed_loop(StallingSender(), [None], 0.5, time.monotonic())
    # One slow request among many fast ones: the closed loop's P99 misses the stall entirely.
    assert closed.histogram.count_between_ms(STALL_S * 1000 * 0.9, float("inf")) == 1
    assert closed.histogram.percentile_ms(99) < 50


def test_completions_from_other_threads_errors_and_rungs() -> None:
    offsets = np.arange(20) * 0.005
    r = run_open_loop(DelayedSender(0.02), ["req"], offsets, time.monotonic() + 0.01)
    assert r.completed == 20
    assert dict(r.errors) == {"UNAVAILABLE": 1}
    assert dict(r.rungs) == {"FULL": 19}
    assert r.histogram.percentile_ms(50) >= 19.0
    # The node's own pipeline time is kept apart, for the answers that carried one.
    assert r.pipeline.count_between_ms(1.9, 2.1) == 19 and r.pipeline.percentile_ms(50) < 3
    assert r.achieved_rps() > 0


class RungSender:
    """Serves even requests FULL and odd ones POPULARITY, at once."""

    def send(self, request: Any, done: Done) -> None:
        done(OK, "FULL" if request % 2 == 0 else "POPULARITY", None)

    def call(self, request: Any) -> tuple[str, str, float | None]:
        return OK, "FULL" if request % 2 == 0 else "POPULARITY", None


def test_degraded_counts_only_requests_that_should_be_full() -> None:
    requests = [0, 1, 2, 3]
    # Requests 0 and 1 are warm users, 2 and 3 unknown: only request 1 is degraded.
    expect_full = [True, True, False, False]
    r = run_open_loop(RungSender(), requests, np.arange(8) * 0.001, time.monotonic(), expect_full=expect_full)
    assert (r.expected_full, r.degraded) == (4, 2)
    assert r.degraded_share() == 0.5
    assert dict(r.rungs) == {"FULL": 4, "POPULARITY": 4}
    closed = run_closed_loop(RungSender(), requests, 0.05, time.monotonic(), expect_full)
    # The loop stops at a time, not a count: it may end between request 0 and request 1 of a cycle.
    full_cycles = closed.sent // len(requests)
    assert closed.degraded == full_cycles + (closed.sent % len(requests) >= 2)
    assert closed.expected_full == 2 * full_cycles + min(closed.sent % len(requests), 2)
