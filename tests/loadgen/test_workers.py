"""The load generator (``edgerank-loadgen`` behind :class:`WorkerPool`) against a real gRPC server.

The server is a stand-in ``Ranker`` whose answers, stalls and failures each test chooses, so that
what the generator measures can be checked against what happened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
import pytest

from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc
from node.loadgen.requests import UNKNOWN_PREFIX
from node.loadgen.result import version_hash
from node.loadgen.workers import LOADGEN_ENV, WorkerError, WorkerPool, loadgen_binary

STALL_S = 0.3
Answer = Callable[[ranker_pb2.RankRequest, grpc.ServicerContext, int], ranker_pb2.RankResponse]


class StandIn(ranker_pb2_grpc.RankerServicer):
    """Numbers the calls (from 1) and answers each with ``answer(request, context, number)``."""

    def __init__(self, answer: Answer):
        self.answer = answer
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def Rank(self, request: ranker_pb2.RankRequest, context: grpc.ServicerContext) -> ranker_pb2.RankResponse:
        with self._lock:
            self.calls += 1
            number = self.calls
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return self.answer(request, context, number)
        finally:
            with self._lock:
                self.in_flight -= 1


def full(total_ms: float = 1.0) -> ranker_pb2.RankResponse:
    return ranker_pb2.RankResponse(served_by=ranker_pb2.SERVED_BY_FULL, total_ms=total_ms)


@pytest.fixture
def serve() -> Iterator[Callable[[Answer, int], tuple[str, StandIn]]]:
    servers: list[grpc.Server] = []

    def start(answer: Answer, threads: int = 4) -> tuple[str, StandIn]:
        servicer = StandIn(answer)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads))
        ranker_pb2_grpc.add_RankerServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}", servicer

    yield start
    for s in servers:
        s.stop(0)


def stall_first(request: ranker_pb2.RankRequest, context: grpc.ServicerContext, n: int) -> ranker_pb2.RankResponse:
    """The first call stalls for STALL_S; every call answers FULL."""
    if n == 1:
        time.sleep(STALL_S)
    return full()


def requests(*users: str) -> list[ranker_pb2.RankRequest]:
    return [ranker_pb2.RankRequest(user_id=u, surface="home", num_results=5) for u in users]


def test_latency_counts_from_the_intended_send_time(serve: Callable[..., tuple[str, StandIn]]) -> None:
    # One server thread: every request that arrives during the stall waits for it.
    target, servicer = serve(stall_first, 1)
    pool = WorkerPool(target, 1, requests("u1"), connections=2)
    try:
        rate, duration = 500.0, 0.8
        r = pool.run_open(rate, duration, seed=2)
    finally:
        pool.close()
    assert r.completed == r.sent == servicer.calls > 0.5 * rate * duration
    assert r.errors == {}
    # The requests meant to leave during the stall were sent on time, and their latency includes
    # the wait: the first waited the whole stall, those after it less and less.
    assert r.histogram.max_ms() >= STALL_S * 1000 * 0.95
    assert r.histogram.count_between_ms(STALL_S * 1000 / 2, float("inf")) >= 0.3 * STALL_S * rate / 2
    assert r.send_lag_max_ms < STALL_S * 1000 / 2
    # The median request came after the stall and saw none of it.
    assert r.histogram.percentile_ms(50) < STALL_S * 1000 / 3
    assert r.cpu_s > 0


def test_a_generator_that_falls_behind_charges_its_own_delay(serve: Callable[..., tuple[str, StandIn]]) -> None:
    target, _ = serve(lambda request, context, n: full())
    pool = WorkerPool(target, 1, requests("u1"))
    results = []
    try:
        run = threading.Thread(target=lambda: results.append(pool.run_open(500.0, 1.0, seed=4)))
        run.start()
        time.sleep(0.5)  # the job has started (0.3 s lead) and is sending
        pid = pool.workers[0].proc.pid
        os.kill(pid, signal.SIGSTOP)  # the generator itself stalls: no send leaves
        time.sleep(STALL_S)
        os.kill(pid, signal.SIGCONT)
        run.join(30)
    finally:
        pool.close()
    (r,) = results
    assert r.errors == {}
    # The sends due during the stop left late, and their latency counts from when they were due.
    assert r.send_lag_max_ms >= STALL_S * 1000 * 0.8
    assert r.histogram.max_ms() >= STALL_S * 1000 * 0.8
    assert r.histogram.count_between_ms(STALL_S * 1000 / 2, float("inf")) >= 0.3 * STALL_S * 500 / 2


def test_closed_loop_keeps_one_in_flight_and_hides_the_stall(serve: Callable[..., tuple[str, StandIn]]) -> None:
    target, servicer = serve(stall_first, 4)
    pool = WorkerPool(target, 2, requests("u1"))
    try:
        closed = pool.run_closed(0.8)
    finally:
        pool.close()
    assert servicer.max_in_flight == 1
    assert closed.sent == servicer.calls > 10
    # One slow request among many fast ones: the closed loop's P99 misses the stall entirely.
    assert closed.histogram.count_between_ms(STALL_S * 1000 * 0.9, float("inf")) == 1
    assert closed.histogram.percentile_ms(99) < STALL_S * 1000 / 3


def test_status_codes_rungs_and_pipeline_time(serve: Callable[..., tuple[str, StandIn]]) -> None:
    def answer(request: ranker_pb2.RankRequest, context: grpc.ServicerContext, n: int) -> ranker_pb2.RankResponse:
        if n % 3 == 0:
            context.abort(grpc.StatusCode.UNAVAILABLE, "every third call")
        if request.user_id.startswith(UNKNOWN_PREFIX):
            return ranker_pb2.RankResponse(served_by=ranker_pb2.SERVED_BY_POPULARITY, total_ms=0.5)
        return full(2.0)

    target, _ = serve(answer, 1)
    pool = WorkerPool(target, 1, requests("u1", f"{UNKNOWN_PREFIX}x"))
    try:
        r = pool.run_open(200.0, 1.0, seed=3)
    finally:
        pool.close()
    failed = r.sent // 3
    assert r.completed == r.sent
    assert dict(r.errors) == {"UNAVAILABLE": failed}
    assert sum(r.rungs.values()) == r.sent - failed and set(r.rungs) == {"FULL", "POPULARITY"}
    # The node's own pipeline time is kept apart, for the answers that carried one.
    assert r.pipeline.count == r.sent - failed
    assert r.pipeline.count_between_ms(1.9, 2.1) == r.rungs["FULL"]
    assert r.pipeline.count_between_ms(0.45, 0.55) == r.rungs["POPULARITY"]


def test_degraded_counts_only_warm_users_served_below_full(serve: Callable[..., tuple[str, StandIn]]) -> None:
    def answer(request: ranker_pb2.RankRequest, context: grpc.ServicerContext, n: int) -> ranker_pb2.RankResponse:
        rung = ranker_pb2.SERVED_BY_FULL if request.user_id == "u0" else ranker_pb2.SERVED_BY_POPULARITY
        return ranker_pb2.RankResponse(served_by=rung, total_ms=1.0)

    target, _ = serve(answer)
    # u0 and u1 are warm users; of them only u1 is served below FULL. The unknown users do not count.
    pool = WorkerPool(target, 1, requests("u0", "u1", f"{UNKNOWN_PREFIX}a", f"{UNKNOWN_PREFIX}b"))
    try:
        closed = pool.run_closed(0.3)
    finally:
        pool.close()
    cycles, rest = divmod(closed.sent, 4)
    assert closed.expected_full == 2 * cycles + min(rest, 2)
    assert closed.degraded == cycles + (rest >= 2)
    assert closed.rungs["FULL"] == cycles + (rest >= 1)


def test_a_call_past_its_timeout_is_deadline_exceeded(serve: Callable[..., tuple[str, StandIn]]) -> None:
    def slow(request: ranker_pb2.RankRequest, context: grpc.ServicerContext, n: int) -> ranker_pb2.RankResponse:
        time.sleep(0.4 if request.user_id == "slow" else 0.0)
        return full()

    target, _ = serve(slow)
    pool = WorkerPool(target, 1, requests("slow", "fast"), timeout_s=0.1)
    try:
        r = pool.run_open(50.0, 0.4, seed=1)
    finally:
        pool.close()
    assert r.errors["DEADLINE_EXCEEDED"] >= 1
    assert r.rungs["FULL"] >= 1
    assert r.histogram.max_ms() < 400


def test_a_target_that_does_not_answer_is_one_readable_error() -> None:
    with pytest.raises(WorkerError, match=r"cannot connect to 127\.0\.0\.1:1\b"):
        WorkerPool("127.0.0.1:1", 1, requests("u1"), connect_s=0.3)


def test_the_binary_missing_says_how_to_build_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOADGEN_ENV, "/nonexistent/edgerank-loadgen")
    with pytest.raises(WorkerError, match="make install"):
        loadgen_binary()


def test_bad_arguments_are_one_line_and_exit_2() -> None:
    run = subprocess.run([str(loadgen_binary()), "--connections", "0"], capture_output=True, text=True, timeout=10)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == ["edgerank-loadgen: --connections must be a whole number >= 1"]


def test_stop_ends_a_long_schedule_and_keeps_what_was_sent(serve: Callable[..., tuple[str, StandIn]]) -> None:
    target, servicer = serve(lambda request, context, n: full(), 4)
    pool = WorkerPool(target, 1, requests("u1"), connections=2)
    try:
        job = pool.start_open(200.0, 3600.0, seed=1)  # an hour's schedule
        time.sleep(0.5)
        t = time.monotonic()
        job.stop()
        (records,), _ = job.records()
        stopped_in_s = time.monotonic() - t
    finally:
        pool.close()
    # Stopped at once, not an hour later, with every request it sent answered and recorded.
    assert stopped_in_s < 30
    assert 0 < len(records) == servicer.calls < 200 * 30
    assert (records["code"] == 0).all()
    assert records["intended_s"].max() < t + 5


def test_each_record_names_the_bundle_version_by_its_hash(serve: Callable[..., tuple[str, StandIn]]) -> None:
    names = ["20261202T010122Z-bench-v2", "20261202T010122Z-bench-v3"]

    def answer(request: ranker_pb2.RankRequest, context: grpc.ServicerContext, n: int) -> ranker_pb2.RankResponse:
        if n % 3 == 0:
            context.abort(grpc.StatusCode.UNAVAILABLE, "no bundle")
        return ranker_pb2.RankResponse(served_by=ranker_pb2.SERVED_BY_FULL, bundle_version=names[n % 2])

    target, _ = serve(answer, 1)
    pool = WorkerPool(target, 1, requests("u1"), connections=1)
    try:
        (records,), _ = pool.start_open(100.0, 0.5, seed=3).records()
    finally:
        pool.close()
    ok = records["code"] == 0
    assert ok.any() and (~ok).any()
    assert set(records["version"][ok].tolist()) == {version_hash(v) for v in names}
    assert (records["version"][~ok] == 0).all()


def test_version_hash_is_fnv1a_64() -> None:
    # The reference values hotpath/loadgen/src/response.rs checks too.
    assert version_hash("") == 0xCBF29CE484222325
    assert version_hash("a") == 0xAF63DC4C8601EC8C
