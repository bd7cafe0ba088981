"""The recently served queries, and a new bundle's warm-up replaying them (node/recent.py)."""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path

import grpc
import pytest

from node.bundle import BundleError, LoadedBundle
from node.bundle_holder import BundleHolder
from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc
from node.pipeline import RankingPipeline
from node.recent import RecentQueries
from node.server import Node
from node.settings import Settings, SettingsError
from node.types import RankQuery, RankResult
from tests.node.conftest import node_settings


def _query(user: str, surface: str = "home", **kw: object) -> RankQuery:
    return RankQuery(user, surface, num_results=10, pool_size=100, **kw)  # type: ignore[arg-type]


def test_keeps_the_last_distinct_queries_oldest_first() -> None:
    recent = RecentQueries(3)
    for user in ["a", "b", "c", "a", "d"]:  # a again: to the end; then d pushes out the oldest, b
        recent.note(_query(user))
    recent.note(_query("d", "new"))  # another surface: another entry; c goes
    assert [(q.user_id, q.surface) for q in recent.replay()] == [("a", "home"), ("d", "home"), ("d", "new")]
    assert len(recent) == 3


def test_the_last_query_of_a_user_and_surface_is_kept() -> None:
    recent = RecentQueries(4)
    recent.note(_query("a", exclude_item_ids=("i1",)))
    recent.note(_query("a", exclude_item_ids=("i2",)))
    assert [q.exclude_item_ids for q in recent.replay()] == [("i2",)]


def test_a_replay_drops_what_was_particular_to_a_request() -> None:
    recent = RecentQueries(2)
    recent.note(_query("a", request_id="r-1", now_ts=1.0, budget_s=0.001, session_id="s"))
    (q,) = recent.replay()
    assert (q.request_id, q.now_ts, q.budget_s) == ("", None, None)
    assert q == dataclasses.replace(_query("a", session_id="s"))


def test_capacity_zero_keeps_nothing_and_negative_is_refused() -> None:
    recent = RecentQueries(0)
    recent.note(_query("a"))
    assert recent.replay() == [] and len(recent) == 0
    with pytest.raises(ValueError, match="capacity"):
        RecentQueries(-1)
    with pytest.raises(SettingsError, match="EDGERANK_WARM_UP_QUERIES: must not be negative"):
        Settings.load(env={"EDGERANK_WARM_UP_QUERIES": "-1"})


def test_threads_noting_at_once() -> None:
    recent = RecentQueries(16)
    errors: list[BaseException] = []

    def note(k: int) -> None:
        try:
            for i in range(5000):
                recent.note(_query(f"u{(i * 7 + k) % 100}"))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=note, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    replay = recent.replay()
    assert len(replay) == 16 and len({q.user_id for q in replay}) == 16


def test_the_warm_up_replays_what_was_served_on_the_new_bundle(bundle_root: Path, second_bundle: Path) -> None:
    first, second = LoadedBundle.load(bundle_root), LoadedBundle.load(second_bundle)
    pipeline = RankingPipeline(Settings.load({"warm_up_queries": 4}, env={}), BundleHolder(first))
    served = [_query(u) for u in ["u001", "u002", "u003"]] + [_query("u004", "new"), _query("u005")]
    served.append(_query("u006", "gone"))  # validated against the first bundle; the second has no such surface
    for q in served[:-1]:
        pipeline.rank(q, first)
    pipeline.recent.note(served[-1])
    seen: list[tuple[str, str, str]] = []
    rank = pipeline._rank

    def spy(query: RankQuery, bundle: LoadedBundle | None = None) -> RankResult:
        seen.append((query.user_id, query.surface, bundle.version if bundle else ""))
        return rank(query, bundle)

    pipeline._rank = spy  # type: ignore[method-assign]
    before = pipeline.recent.replay()
    pipeline.warm_up(second)
    replayed = [s for s in seen if not s[0].startswith("__") and s[0] not in _golden_users(second)]
    # The 4 kept (u001 and u002 went), oldest first, minus the surface the second bundle lacks; all on the second.
    v = second.version
    assert replayed == [("u003", "home", v), ("u004", "new", v), ("u005", "home", v)]
    assert {v for _, _, v in seen} == {second.version}
    assert pipeline.recent.replay() == before  # the warm-up's own requests are not noted


def _golden_users(bundle: LoadedBundle) -> set[str]:
    return {str(c["user_id"]) for c in bundle.golden}


def test_a_node_warms_a_new_bundle_with_the_users_it_served(
    bundle_root: Path, second_bundle: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Node(node_settings(bundle_root, warm_up_queries=256)).start() as node:
        with grpc.insecure_channel(node.target) as channel:
            stub = ranker_pb2_grpc.RankerStub(channel)
            for user in ["u010", "u011", "u010", "new-user"]:
                stub.Rank(ranker_pb2.RankRequest(user_id=user, num_results=5), timeout=10)
        with caplog.at_level(logging.INFO, logger="node.pipeline"):
            bundle = node.load_bundle(second_bundle)
    assert f"bundle {bundle.version} warmed up with 3 recently served queries" in caplog.text


def test_a_replayed_query_that_fails_refuses_the_new_bundle(bundle_root: Path, second_bundle: Path) -> None:
    with Node(node_settings(bundle_root, warm_up_queries=8)).start() as node:
        node.pipeline.rank(_query("u020"))
        rank = node.pipeline._rank

        def failing(query: RankQuery, bundle: LoadedBundle | None = None) -> RankResult:
            if query.user_id == "u020":
                raise RuntimeError("the new version cannot rank u020")
            return rank(query, bundle)

        node.pipeline._rank = failing  # type: ignore[method-assign]
        served = node.holder.snapshot()
        with pytest.raises(BundleError, match="warm-up failed: RuntimeError: the new version cannot rank u020"):
            node.load_bundle(second_bundle)
        assert node.holder.snapshot() is served


def test_off_by_default(bundle_root: Path) -> None:
    pipeline = RankingPipeline(Settings.load(env={}), BundleHolder(LoadedBundle.load(bundle_root)))
    pipeline.rank(_query("u001"))
    assert pipeline.recent.replay() == []
