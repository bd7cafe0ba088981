"""Worker processes that drive the load, and merging what they measured.

A :class:`WorkerPool` starts ``n`` processes once (``spawn``); each opens its
own gRPC connections and then runs jobs: an open-loop job gets its share of
one shared Poisson schedule (dealt round-robin) and the common start time; a
closed-loop job runs one request at a time. Each job reports its latencies
as an encoded HDR histogram, its counters and its own CPU time
(``resource.getrusage``), which the pool merges into one :class:`RunResult`.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import resource
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from typing import Any

import numpy as np

from node.loadgen.driver import RunResult, run_closed_loop, run_open_loop
from node.loadgen.histogram import LatencyHistogram
from node.loadgen.schedule import poisson_schedule, split

START_LEAD_S = 0.3  # workers are idle; this is ample for them to pick the job up
JOB_SLACK_S = 60.0


@dataclass(frozen=True)
class Job:
    kind: str  # "open" or "closed"
    start: float  # monotonic seconds
    offsets: np.ndarray | None = None  # open loop: this worker's intended send offsets
    duration_s: float = 0.0  # closed loop


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _worker_main(
    target: str,
    connections: int,
    timeout_s: float,
    raw_requests: list[bytes],
    jobs: Queue[Job | None],
    results: Queue[dict[str, Any]],
) -> None:
    from node.gen.edgerank.v1 import ranker_pb2
    from node.loadgen.grpc_sender import GrpcSender
    from node.loadgen.requests import expects_full

    requests = [ranker_pb2.RankRequest.FromString(b) for b in raw_requests]
    full = expects_full(requests)
    sender = GrpcSender(target, connections, timeout_s)
    try:
        sender.wait_ready()
        results.put({"ready": True})
        while (job := jobs.get()) is not None:
            cpu0 = _cpu_s()
            try:
                if job.kind == "open":
                    assert job.offsets is not None
                    r = run_open_loop(sender, requests, job.offsets, job.start, expect_full=full)
                else:
                    r = run_closed_loop(sender, requests, job.duration_s, job.start, full)
            except Exception as e:
                results.put({"error": f"{type(e).__name__}: {e}"})
                continue
            results.put(
                {
                    "histogram": r.histogram.encode(),
                    "pipeline": r.pipeline.encode(),
                    "sent": r.sent,
                    "completed": r.completed,
                    "errors": dict(r.errors),
                    "rungs": dict(r.rungs),
                    "lag_max_ms": r.send_lag_max_ms,
                    "lag_p99_ms": r.send_lag_p99_ms,
                    "started": r.started,
                    "finished": r.finished,
                    "cpu_s": _cpu_s() - cpu0,
                    "expected_full": r.expected_full,
                    "degraded": r.degraded,
                }
            )
    finally:
        sender.close()


class WorkerError(RuntimeError):
    """A load generator worker failed."""


class WorkerPool:
    def __init__(self, target: str, workers: int, requests: list[Any], connections: int = 4, timeout_s: float = 2.0):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        ctx = mp.get_context("spawn")
        self._results: Queue[dict[str, Any]] = ctx.Queue()
        self._jobs: list[Queue[Job | None]] = [ctx.Queue() for _ in range(workers)]
        raw = [r.SerializeToString() for r in requests]
        self.procs: list[BaseProcess] = [
            ctx.Process(
                target=_worker_main,
                args=(target, connections, timeout_s, raw, self._jobs[i], self._results),
                daemon=True,
            )
            for i in range(workers)
        ]
        for p in self.procs:
            p.start()
        self._collect(workers, 60.0, "connect")

    def _collect(self, n: int, timeout_s: float, what: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < n:
            try:
                msg = self._results.get(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            except queue.Empty:
                dead = [p for p in self.procs if p.exitcode is not None]
                if dead:
                    raise WorkerError(f"load generator worker {dead[0].pid} died (exit {dead[0].exitcode})") from None
                if time.monotonic() > deadline:
                    raise WorkerError(f"load generator workers did not {what} within {timeout_s:.0f} s") from None
                continue
            if "error" in msg:
                raise WorkerError(f"load generator worker failed: {msg['error']}")
            out.append(msg)
        return out

    def run_open(self, rate: float, duration_s: float, seed: int = 0) -> RunResult:
        """Poisson arrivals at ``rate``/s for ``duration_s``, the schedule shared across the workers."""
        parts = split(poisson_schedule(rate, duration_s, seed), len(self.procs))
        start = time.monotonic() + START_LEAD_S
        for q, offsets in zip(self._jobs, parts, strict=True):
            q.put(Job("open", start, offsets=offsets))
        return self._merge(self._collect(len(self.procs), duration_s + JOB_SLACK_S, "finish"), start)

    def run_closed(self, duration_s: float) -> RunResult:
        """One request in flight, on the first worker only."""
        start = time.monotonic() + START_LEAD_S
        self._jobs[0].put(Job("closed", start, duration_s=duration_s))
        return self._merge(self._collect(1, duration_s + JOB_SLACK_S, "finish"), start)

    @staticmethod
    def _merge(parts: list[dict[str, Any]], start: float) -> RunResult:
        merged = RunResult(started=start)
        for p in parts:
            merged.histogram.merge(LatencyHistogram.decode(p["histogram"]))
            merged.pipeline.merge(LatencyHistogram.decode(p["pipeline"]))
            merged.sent += p["sent"]
            merged.completed += p["completed"]
            merged.errors += Counter(p["errors"])
            merged.rungs += Counter(p["rungs"])
            merged.send_lag_max_ms = max(merged.send_lag_max_ms, p["lag_max_ms"])
            merged.send_lag_p99_ms = max(merged.send_lag_p99_ms, p["lag_p99_ms"])
            merged.finished = max(merged.finished, p["finished"])
            merged.cpu_s += p["cpu_s"]
            merged.expected_full += p["expected_full"]
            merged.degraded += p["degraded"]
        return merged

    def close(self) -> None:
        for q in self._jobs:
            q.put(None)
        for p in self.procs:
            p.join(5.0)
            if p.exitcode is None:
                p.kill()
                p.join()
