"""What one run measured, from the load generator's per-request records.

``edgerank-loadgen`` (hotpath/loadgen, Rust) writes one record per request; :data:`RECORD_DTYPE`
mirrors its layout (hotpath/loadgen/src/record.rs). A request's latency runs from its *intended*
send time, so that whatever delayed a send is charged to the requests it delayed (no coordinated
omission).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from node.loadgen.histogram import LatencyHistogram

OK = "OK"
FULL = "FULL"

RECORD_DTYPE = np.dtype(
    [
        ("intended_s", "<f8"),  # CLOCK_MONOTONIC seconds (closed loop: when it left)
        ("lag_us", "<f8"),  # how late it left
        ("latency_us", "<f8"),  # intended time to answer
        ("total_ms", "<f8"),  # RankResponse.total_ms, NaN unless OK
        ("code", "<i4"),  # gRPC status code
        ("served_by", "<i4"),  # RankResponse.served_by, 0 unless OK
        ("version", "<u8"),  # version_hash(RankResponse.bundle_version), 0 unless OK
    ]
)


def version_hash(version: str) -> int:
    """FNV-1a (64 bits) of a bundle version's UTF-8 bytes, never 0: the ``version`` field of a record
    (hotpath/loadgen/src/response.rs computes the same)."""
    h = 0xCBF29CE484222325
    for b in version.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return max(h, 1)


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
    cpu_s: float = 0.0  # the load generator's user + system CPU during the run
    # Answers to requests that should be served FULL (warm users) that came from a lower rung.
    expected_full: int = 0
    degraded: int = 0

    def degraded_share(self) -> float:
        return self.degraded / self.expected_full if self.expected_full else 0.0

    def achieved_rps(self) -> float:
        span = self.finished - self.started
        return self.completed / span if span > 0 else 0.0

    def add_records(
        self,
        records: np.ndarray,
        expect_full: Sequence[bool],
        code_name: Callable[[int], str],
        rung_name: Callable[[int], str],
    ) -> None:
        """Count one job's records; record ``k`` was request ``k % len(expect_full)``.

        ``code_name`` and ``rung_name`` name a status code and a ``ServedBy`` number.
        """
        n = len(records)
        if n == 0:
            return
        for us in records["latency_us"]:
            self.histogram.record_us(float(us))
        ok = records["code"] == 0
        for ms in records["total_ms"][ok]:
            self.pipeline.record_us(float(ms) * 1e3)
        self.sent += n
        self.completed += n
        for code, count in Counter(records["code"][~ok].tolist()).items():
            self.errors[code_name(code)] += count
        rungs = records["served_by"][ok]
        names = {int(r): rung_name(int(r)) for r in np.unique(rungs)}
        for rung, count in Counter(rungs.tolist()).items():
            self.rungs[names[rung]] += count
        served_full = np.isin(rungs, [r for r, name in names.items() if name == FULL])
        full = np.asarray(expect_full, bool)[np.arange(n) % len(expect_full)][ok]
        self.expected_full += int(full.sum())
        self.degraded += int((full & ~served_full).sum())
        lags_ms = records["lag_us"] / 1e3
        self.send_lag_max_ms = max(self.send_lag_max_ms, float(lags_ms.max()))
        self.send_lag_p99_ms = max(self.send_lag_p99_ms, float(np.percentile(lags_ms, 99)))
        done = records["intended_s"] + records["latency_us"] / 1e6
        self.finished = max(self.finished, float(done.max()))
