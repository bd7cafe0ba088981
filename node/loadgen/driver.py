"""Sending on schedule and recording latencies: open loop (Poisson) and one in flight (closed loop).

The driver does not know about gRPC: it calls a :class:`Sender`, which
starts a request and later calls ``done(code, rung)`` from any thread. The
latency recorded for a request is ``completion - intended send time``: when
the driver falls behind (the sender blocked, or ``max_in_flight`` requests
were outstanding), the delay is charged to the requests it delayed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from node.loadgen.histogram import LatencyHistogram

OK = "OK"
FULL = "FULL"
# (status code name, served_by rung name, the node's own pipeline time in ms when it said, else None)
Done = Callable[[str, str, float | None], None]
SPIN_S = 0.0002  # below this, spin instead of sleeping


class Sender(Protocol):
    def send(self, request: Any, done: Done) -> None:
        """Start ``request``; call ``done(code, rung, pipeline_ms)`` exactly once when it completes."""
        ...

    def call(self, request: Any) -> tuple[str, str, float | None]:
        """Send ``request`` and wait for it: (code, rung, pipeline_ms)."""
        ...


@dataclass
class RunResult:
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    # The node's own pipeline time of each answer (RankResponse.total_ms): what of the latency is not
    # spent queueing, in gRPC or off the CPU.
    pipeline: LatencyHistogram = field(default_factory=LatencyHistogram)
    sent: int = 0
    completed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    rungs: Counter[str] = field(default_factory=Counter)
    # How late sends left relative to their intended time (the generator's own lag), ms.
    send_lag_max_ms: float = 0.0
    send_lag_p99_ms: float = 0.0
    # monotonic seconds: the schedule's start, and the last completion.
    started: float = 0.0
    finished: float = 0.0
    cpu_s: float = 0.0  # this process's user + system CPU during the run
    # Answers to requests that should be served FULL (warm users) that came from a lower rung.
    expected_full: int = 0
    degraded: int = 0

    def degraded_share(self) -> float:
        return self.degraded / self.expected_full if self.expected_full else 0.0

    def achieved_rps(self) -> float:
        span = self.finished - self.started
        return self.completed / span if span > 0 else 0.0


def _sleep_until(t: float) -> None:
    while True:
        left = t - time.monotonic()
        if left <= 0:
            return
        if left > SPIN_S:
            time.sleep(left - SPIN_S / 2)


def run_open_loop(
    sender: Sender,
    requests: Sequence[Any],
    offsets: np.ndarray,
    start: float,
    *,
    expect_full: Sequence[bool] | None = None,
    max_in_flight: int = 10_000,
    drain_timeout_s: float = 30.0,
) -> RunResult:
    """Send ``requests`` (cycled) at ``start + offsets`` (monotonic seconds) and wait for all replies.

    ``expect_full[i]`` says that ``requests[i]`` should be served FULL (a warm user); an answer
    from a lower rung counts in ``degraded``.
    """
    result = RunResult(started=start)
    lock = threading.Lock()
    slots = threading.BoundedSemaphore(max_in_flight)
    all_done = threading.Event()
    lags = np.empty(len(offsets), np.float64)
    n = len(offsets)
    if n == 0:
        result.finished = start
        return result

    def completion(intended: float, full: bool) -> Done:
        def done(code: str, rung: str, pipeline_ms: float | None = None) -> None:
            now = time.monotonic()
            result.histogram.record_us((now - intended) * 1e6)
            with lock:
                if pipeline_ms is not None:
                    result.pipeline.record_us(pipeline_ms * 1e3)
                result.completed += 1
                if code != OK:
                    result.errors[code] += 1
                else:
                    result.rungs[rung] += 1
                    if full:
                        result.expected_full += 1
                        result.degraded += rung != FULL
                result.finished = max(result.finished, now)
                if result.completed == n:
                    all_done.set()
            slots.release()

        return done

    for k in range(n):
        intended = start + float(offsets[k])
        _sleep_until(intended)
        slots.acquire()
        lags[k] = time.monotonic() - intended
        result.sent += 1
        i = k % len(requests)
        sender.send(requests[i], completion(intended, bool(expect_full[i]) if expect_full is not None else False))
    if not all_done.wait(drain_timeout_s):
        with lock:
            missing = n - result.completed
        raise TimeoutError(f"{missing} of {n} requests got no reply within {drain_timeout_s:.0f} s of the last send")
    result.send_lag_max_ms = float(lags.max() * 1e3)
    result.send_lag_p99_ms = float(np.percentile(lags, 99) * 1e3)
    return result


def run_closed_loop(
    sender: Sender,
    requests: Sequence[Any],
    duration_s: float,
    start: float,
    expect_full: Sequence[bool] | None = None,
) -> RunResult:
    """One request in flight at a time, back to back, for ``duration_s`` from ``start``."""
    _sleep_until(start)
    result = RunResult(started=start)
    end = start + duration_s
    k = 0
    while True:
        t0 = time.monotonic()
        if t0 >= end:
            break
        i = k % len(requests)
        code, rung, pipeline_ms = sender.call(requests[i])
        t1 = time.monotonic()
        result.histogram.record_us((t1 - t0) * 1e6)
        if pipeline_ms is not None:
            result.pipeline.record_us(pipeline_ms * 1e3)
        result.sent += 1
        result.completed += 1
        if code != OK:
            result.errors[code] += 1
        else:
            result.rungs[rung] += 1
            if expect_full is not None and expect_full[i]:
                result.expected_full += 1
                result.degraded += rung != FULL
        result.finished = t1
        k += 1
    return result
