"""A small open-loop Rank load for ``edgerank bench replication``: a fixed rate, spread over nodes.

A thread sends ``Rank`` at fixed intervals whether or not earlier answers came
back (gRPC futures), round-robin over the targets, and records for each request
its intended send time, its latency measured from that time (no coordinated
omission), whether it failed, and the bundle version that answered. Windows
of intended send times are then summarised (P99.9 of one window against
another).
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np

from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc

SPIN_S = 0.0005


@dataclass
class Sample:
    intended: float  # monotonic seconds
    latency_ms: float
    ok: bool
    version: str


@dataclass
class OpenLoopLoad:
    targets: list[str]
    users: list[str]
    rate: float  # requests per second over all targets
    timeout_s: float = 2.0
    samples: list[Sample] = field(default_factory=list)
    lags_ms: list[float] = field(default_factory=list)  # how late sends left (the generator's own lag)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _channels: list[grpc.Channel] = field(default_factory=list)
    _sent: int = 0

    def start(self) -> OpenLoopLoad:
        self._channels = [grpc.insecure_channel(t) for t in self.targets]
        for ch in self._channels:
            grpc.channel_ready_future(ch).result(timeout=30)
        self._thread = threading.Thread(target=self._run, name="bench-load", daemon=True)
        self._thread.start()
        return self

    def stop(self, drain_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        deadline = time.monotonic() + drain_s
        while len(self.samples) < self._sent and time.monotonic() < deadline:
            time.sleep(0.01)
        for ch in self._channels:
            ch.close()

    def _run(self) -> None:
        stubs = itertools.cycle([ranker_pb2_grpc.RankerStub(ch) for ch in self._channels])
        users = itertools.cycle(self.users)
        period = 1.0 / self.rate
        start = time.monotonic()
        for k in itertools.count():
            if self._stop.is_set():
                return
            intended = start + k * period
            while (left := intended - time.monotonic()) > 0:
                time.sleep(max(0.0, left - SPIN_S / 2) if left > SPIN_S else 0)
            self.lags_ms.append((time.monotonic() - intended) * 1e3)
            request = ranker_pb2.RankRequest(user_id=next(users), num_results=10)
            self._sent += 1
            future = next(stubs).Rank.future(request, timeout=self.timeout_s)
            future.add_done_callback(self._done(intended))

    def _done(self, intended: float) -> Any:
        def done(future: Any) -> None:
            latency = (time.monotonic() - intended) * 1e3
            error = future.exception()
            version = "" if error is not None else future.result().bundle_version
            self.samples.append(Sample(intended, latency, error is None, version))  # list.append is atomic

        return done

    def window(self, t0: float, t1: float) -> list[Sample]:
        return [s for s in list(self.samples) if t0 <= s.intended < t1]


def summary(samples: list[Sample]) -> dict[str, Any]:
    """Count, errors, P50/P99/P99.9/max in ms of a window (latencies of failed requests included)."""
    if not samples:
        return {"requests": 0, "errors": 0, "p50_ms": None, "p99_ms": None, "p999_ms": None, "max_ms": None}
    lat = np.array([s.latency_ms for s in samples])
    return {
        "requests": len(samples),
        "errors": sum(not s.ok for s in samples),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "p999_ms": round(float(np.percentile(lat, 99.9)), 2),
        "max_ms": round(float(lat.max()), 2),
    }
