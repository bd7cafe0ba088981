"""Deadlines and the ladder's budget rules: cancelled rankers, drills, too-short deadlines, metrics."""

from __future__ import annotations

import dataclasses
import logging
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY

from node.bundle import LoadedBundle
from node.bundle_holder import BundleHolder
from node.deadline import POPULARITY_RESERVE_S, Deadline, StageCosts, Watchdog, request_budget
from node.errors import DeadlineExceeded
from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc
from node.log_limit import LogLimiter
from node.pipeline import RankingPipeline
from node.server import Node
from node.settings import Settings
from node.types import RankQuery, ServedBy
from tests.node.conftest import node_settings
from tests.servers import free_port


@pytest.fixture(scope="module")
def bundle(bundle_root: Path) -> LoadedBundle:
    return LoadedBundle.load(bundle_root)


def pipeline_with(bundle: LoadedBundle, **settings: object) -> RankingPipeline:
    return RankingPipeline(Settings.load(settings, env={}), BundleHolder(bundle))


def query(**changes: Any) -> RankQuery:
    base = RankQuery(user_id="u005", surface="home", num_results=10, pool_size=200, request_id="r")
    return dataclasses.replace(base, **changes)


def test_request_budget_is_the_request_deadline_capped_at_the_node_budget() -> None:
    assert request_budget(None, 50.0) == pytest.approx(0.05)
    assert request_budget(0.010, 50.0) == pytest.approx(0.010)
    assert request_budget(3.0, 50.0) == pytest.approx(0.05)
    assert request_budget(-1.0, 50.0) == 0.0


def test_deadline_fits_keeps_a_reserve() -> None:
    d = Deadline(0.010)
    assert d.fits(0.001)
    assert not d.fits(0.006)  # twice the estimate plus the reserve does not fit
    assert not Deadline(0.0).fits(0.0)


def test_stage_costs_move_towards_observations() -> None:
    costs = StageCosts()
    assert costs.estimate("score") == 0.0
    costs.observe("score", 0.010)
    assert costs.estimate("score") == pytest.approx(0.010)
    for _ in range(100):
        costs.observe("score", 0.001)
    assert costs.estimate("score") == pytest.approx(0.001, rel=0.05)


def test_watchdog_terminates_at_the_deadline() -> None:
    dog = Watchdog()
    options = dog.guard(time.perf_counter() + 0.02)
    assert not options.terminate
    end = time.perf_counter() + 5.0
    while not options.terminate and time.perf_counter() < end:
        time.sleep(0.001)
    assert options.terminate


def test_the_watchdog_leaves_released_runs_alone() -> None:
    dog = Watchdog()
    released = dog.guard(time.perf_counter() + 0.01)
    dog.release(released)
    later = dog.guard(time.perf_counter() + 0.03)  # later than the one the thread waits for
    end = time.perf_counter() + 5.0
    while not later.terminate and time.perf_counter() < end:
        time.sleep(0.001)
    assert later.terminate and not released.terminate


def test_a_slow_ranker_is_cancelled_and_serves_retrieval_order(bundle: LoadedBundle) -> None:
    slow = pipeline_with(bundle, drill_ranker_delay_ms=2000)
    started = time.perf_counter()
    result = slow.rank(query(budget_s=0.05))
    elapsed = time.perf_counter() - started
    assert result.served_by == ServedBy.RETRIEVAL_ORDER
    assert len(result.items) == 10
    # The 2 s ranker was abandoned, not waited for.
    assert elapsed < 1.0
    # The next request knows the ranker is slow and does not try it again before the probe interval.
    second = slow.rank(query(budget_s=0.05))
    assert second.served_by == ServedBy.RETRIEVAL_ORDER
    assert "score" not in second.stages


def test_a_shorter_request_deadline_cuts_the_ranker_earlier(bundle: LoadedBundle) -> None:
    slow = pipeline_with(bundle, drill_ranker_delay_ms=2000)
    started = time.perf_counter()
    assert slow.rank(query(budget_s=0.005)).served_by == ServedBy.RETRIEVAL_ORDER
    assert time.perf_counter() - started < 1.0


def test_index_down_drill_serves_popularity(bundle: LoadedBundle) -> None:
    result = pipeline_with(bundle, drill_index_down=True).rank(query())
    assert result.served_by == ServedBy.POPULARITY and len(result.items) == 10


def test_a_deadline_too_short_for_any_rung_is_the_only_error(bundle: LoadedBundle) -> None:
    with pytest.raises(DeadlineExceeded, match="too short"):
        pipeline_with(bundle).rank(query(budget_s=POPULARITY_RESERVE_S / 10))


def test_rank_over_grpc_counts_rungs_and_serves_metrics(bundle_root: Path) -> None:
    port = free_port()
    with Node(node_settings(bundle_root, metrics_port=port)).start() as node:
        before = REGISTRY.get_sample_value("edgerank_rank_requests_total", {"rung": "FULL"}) or 0.0
        with grpc.insecure_channel(node.target) as channel:
            stub = ranker_pb2_grpc.RankerStub(channel)
            response = stub.Rank(ranker_pb2.RankRequest(user_id="u005", surface="home", num_results=5), timeout=5)
        assert response.served_by == ranker_pb2.SERVED_BY_FULL
        after = REGISTRY.get_sample_value("edgerank_rank_requests_total", {"rung": "FULL"})
        assert after == before + 1
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
            text = page.read().decode()
        assert 'edgerank_stage_seconds_bucket{le="0.001",stage="score"}' in text
        assert "edgerank_bundle_info{" in text
        assert 'edgerank_rpc_responses_total{code="OK",method="/edgerank.v1.Ranker/Rank"}' in text


def rank_until(pipeline: RankingPipeline, rung: ServedBy, timeout_s: float = 5.0) -> list[ServedBy]:
    """Rank (budget 50 ms) until ``rung`` serves or ``timeout_s`` passes; the rungs that served."""
    served: list[ServedBy] = []
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and (not served or served[-1] != rung):
        served.append(pipeline.rank(query(budget_s=0.05)).served_by)
        time.sleep(0.01)
    return served


def test_retrieval_skipped_after_a_stall_is_measured_again(bundle: LoadedBundle) -> None:
    pipeline = pipeline_with(bundle)
    assert pipeline.rank(query()).served_by == ServedBy.FULL
    # One stall (a neighbour's, a page fault) makes the running estimate too big for any deadline.
    pipeline.costs.observe("retrieve", 10.0)
    served = rank_until(pipeline, ServedBy.FULL)
    assert served[0] == ServedBy.POPULARITY  # skipped: the request does not wait for a probe
    assert served[-1] == ServedBy.FULL  # measured again off the request path, and served again
    assert pipeline.costs.estimate("retrieve") < 0.05


def test_retrieval_probes_are_spaced_by_the_interval(bundle: LoadedBundle) -> None:
    pipeline = pipeline_with(bundle)
    probed: list[str] = []
    pipeline.probes.measure = lambda stage, run: probed.append(stage)  # type: ignore[method-assign]
    pipeline.costs.observe("retrieve", 10.0)
    for _ in range(5):
        assert pipeline.rank(query(budget_s=0.05)).served_by == ServedBy.POPULARITY
    assert probed == ["retrieve"]


# A little more than the probe interval (node.deadline.PROBE_INTERVAL_S).
PROBE_WAIT_S = 1.05


def test_a_ranker_probe_stops_at_half_the_budget(bundle: LoadedBundle) -> None:
    slow = pipeline_with(bundle, drill_ranker_delay_ms=5000)
    budget = 1.0  # long, so that a busy machine's late wake-ups (tens of ms) do not decide the test
    first = slow.rank(query(budget_s=budget))  # fits by its estimate: runs, cancelled near the deadline
    assert first.served_by == ServedBy.RETRIEVAL_ORDER
    time.sleep(PROBE_WAIT_S)
    probe = slow.rank(query(budget_s=budget))
    assert probe.served_by == ServedBy.RETRIEVAL_ORDER and "score" in probe.stages
    # A probe runs no longer than a run that fits could (half the budget left), not to the deadline.
    assert probe.stages["score"] < 0.5 * budget * 1e3 + 200
    assert probe.total_ms < 0.5 * budget * 1e3 + 250


def test_a_ranker_probe_that_finishes_replaces_the_estimate(bundle: LoadedBundle) -> None:
    pipeline = pipeline_with(bundle)
    assert pipeline.rank(query(budget_s=0.05)).served_by == ServedBy.FULL
    pipeline.costs.observe("score", 10.0)  # one stall
    assert pipeline.rank(query(budget_s=0.05)).served_by == ServedBy.RETRIEVAL_ORDER
    time.sleep(PROBE_WAIT_S)
    assert pipeline.rank(query(budget_s=0.05)).served_by == ServedBy.FULL  # the probe
    assert pipeline.rank(query(budget_s=0.05)).served_by == ServedBy.FULL  # and every request after it


def test_a_cancelled_run_leaves_the_last_rung_its_time(bundle: LoadedBundle) -> None:
    slow = pipeline_with(bundle, drill_ranker_delay_ms=5000)
    slow.costs.observe("result", 0.2)  # the last rung needs 200 ms after the ranker is cut
    result = slow.rank(query(budget_s=1.0))
    assert result.served_by == ServedBy.RETRIEVAL_ORDER
    # Cut at about 1000 - 2 * 200 ms (and a little), not near the deadline: the bound leaves a busy
    # machine's late wake-ups (tens to a couple of hundred ms) room without letting a cut at the deadline pass.
    assert result.stages["score"] < 1000 - 200


def test_index_down_logs_one_line_per_interval_with_a_count(
    bundle: LoadedBundle, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = pipeline_with(bundle, drill_index_down=True)
    clock = [100.0]
    pipeline.warnings = LogLimiter(logging.getLogger("node.pipeline"), 10.0, clock=lambda: clock[0])
    with caplog.at_level(logging.WARNING, logger="node.pipeline"):
        for _ in range(50):
            assert pipeline.rank(query()).served_by == ServedBy.POPULARITY
        clock[0] += 10.5
        assert pipeline.rank(query()).served_by == ServedBy.POPULARITY
    lines = [r for r in caplog.records if "retrieval failed" in r.getMessage()]
    assert len(lines) == 2
    assert lines[0].exc_info is not None  # the first occurrence has its traceback
    fields = lines[1].fields  # type: ignore[attr-defined]
    assert fields["count"] == 50 and fields["kind"] == "retrieval" and "drill" in fields["error"]
    assert "50 times in the last 10.5 s" in lines[1].getMessage()
