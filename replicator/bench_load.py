"""The Rank load of ``edgerank bench replication``: open loop, spread over the regions' nodes.

Per node, one ``edgerank-loadgen`` process (:mod:`node.loadgen.workers`, Rust, out of the bench's own
process) sends Poisson arrivals at its share of the rate for as long as the bench runs and records,
for each request, its intended send time, its latency from that time (no coordinated omission), its
status, the bundle version that answered and the node's own pipeline time. The bench then reads
windows of intended send times (P99.9 of one window against another) and, from the versions, when
each region began to answer from a new one.

Until session (9) this was a Python thread in the bench's process: gRPC futures and their callbacks
shared one GIL with the bench's probing (a Rank to each node every 10 ms while it waited for a swap)
and its NATS writes. The slowest requests of a swap then spent 1-3 ms in the node's pipeline and
10-24 ms elsewhere, and the probe added up to 100 requests/s per node (one every 10 ms plus its round
trip) during the swaps only
(BENCHMARKS.md, replication, session (9)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from node.gen.edgerank.v1 import ranker_pb2
from node.loadgen.result import version_hash
from node.loadgen.workers import Job, WorkerPool

MAX_S = 3600.0  # the schedule's length: longer than any run; the bench stops the load when it is done
CONNECTIONS = 4  # per node


@dataclass(frozen=True)
class Sample:
    intended: float  # monotonic seconds
    latency_ms: float
    ok: bool
    version: str  # the bundle version that answered; "" unless ok
    pipeline_ms: float  # the node's own time from the start of its pipeline to the answer; NaN unless ok
    target: str
    # How late the generator sent it: a stall of the machine (the generator is a process of its own on the same
    # cores) shows here as well as in the latency; a stall of the node only in the latency.
    lag_ms: float = 0.0


class RegionLoad:
    """Open-loop Rank at ``rate``/s in all, split evenly over ``targets`` (one generator process each)."""

    def __init__(self, targets: list[str], users: list[str], rate: float, timeout_s: float = 2.0, seed: int = 0):
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        requests = [ranker_pb2.RankRequest(user_id=u, num_results=10) for u in users]
        self.targets, self.rate, self._seed = targets, rate, seed
        self._pools: list[WorkerPool] = []
        self._jobs: list[Job] = []
        self.samples: list[Sample] = []
        self.lags_ms = np.zeros(0)  # how late each send left (the generator's own lag)
        self.cpu_s = 0.0  # the generators' CPU
        try:
            for t in targets:
                self._pools.append(WorkerPool(t, 1, requests, connections=CONNECTIONS, timeout_s=timeout_s))
        except BaseException:
            self.close()
            raise

    def start(self) -> RegionLoad:
        share = self.rate / len(self.targets)
        self._jobs = [p.start_open(share, MAX_S, seed=self._seed + i) for i, p in enumerate(self._pools)]
        return self

    def stop(self, versions: set[str]) -> None:
        """End the load, wait for its answers and read them; ``versions`` name the answers' hashes."""
        names = {version_hash(v): v for v in versions}
        for job in self._jobs:
            job.stop()
        for target, job in zip(self.targets, self._jobs, strict=True):
            parts, cpu_s = job.records()
            self.cpu_s += cpu_s
            records = np.concatenate(parts)
            self.lags_ms = np.concatenate([self.lags_ms, records["lag_us"] / 1e3])
            for r in records:
                ok = int(r["code"]) == 0
                h = int(r["version"])
                version = names.get(h, f"unknown-{h:016x}") if ok else ""
                latency_ms, pipeline_ms = float(r["latency_us"]) / 1e3, float(r["total_ms"])
                intended, lag_ms = float(r["intended_s"]), float(r["lag_us"]) / 1e3
                self.samples.append(Sample(intended, latency_ms, ok, version, pipeline_ms, target, lag_ms))
        self.samples.sort(key=lambda s: s.intended)
        self._jobs = []

    def close(self) -> None:
        for job in self._jobs:  # stopped without reading: the workers still have to be told
            job.stop()
        for p in self._pools:
            p.close()
        self._pools = []

    def window(self, t0: float, t1: float) -> list[Sample]:
        return [s for s in self.samples if t0 <= s.intended < t1]

    def send_lag_p99_ms(self) -> float:
        return round(float(np.percentile(self.lags_ms, 99)), 3) if len(self.lags_ms) else 0.0


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


# The ratio's interval: resamples of each window, with replacement (a percentile bootstrap). A P99.9 of
# ~1,500 requests is set by its two slowest: for two samples of one distribution at the bench's sizes the
# interval is about 0.75-1.33 (tests/replicator/test_bench_load.py).
RATIO_RESAMPLES = 2000
RATIO_LEVEL = 0.90


def ratio_interval(
    num: list[Sample], den: list[Sample], q: float = 99.9, *, resamples: int = RATIO_RESAMPLES, seed: int = 0
) -> tuple[float, float] | None:
    """A ``RATIO_LEVEL`` bootstrap interval of P``q``(num) / P``q``(den) over their latencies; None when
    a window is empty. Seeded: the same samples give the same interval."""
    if not num or not den:
        return None
    rng = np.random.default_rng(seed)
    a = np.array([s.latency_ms for s in num])
    b = np.array([s.latency_ms for s in den])
    ratios = np.percentile(rng.choice(a, (resamples, a.size)), q, axis=1) / np.percentile(
        rng.choice(b, (resamples, b.size)), q, axis=1
    )
    tail = (1 - RATIO_LEVEL) / 2 * 100
    lo, hi = np.percentile(ratios, [tail, 100 - tail])
    return round(float(lo), 2), round(float(hi), 2)


def first_served(samples: list[Sample], target: str, version: str, t0: float, t1: float) -> float | None:
    """When ``target`` began to answer from ``version`` for good within [t0, t1): the intended time of the
    first request after the last one (sent in the window) that was answered otherwise or failed; None
    when the window's last request was."""
    mine = [s for s in samples if s.target == target and t0 <= s.intended < t1]
    last_other = max((k for k, s in enumerate(mine) if not (s.ok and s.version == version)), default=-1)
    return mine[last_other + 1].intended if last_other + 1 < len(mine) else None
