"""Deadlines and the ladder's budget rules: cancelled rankers, drills, too-short deadlines, metrics."""

from __future__ import annotations

import dataclasses
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
