"""The degradation ladder: each failure moves a request down one rung, never to an error."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from node.bundle import LoadedBundle
from node.bundle_holder import BundleHolder
from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc
from node.pipeline import RankingPipeline
from node.server import Node
from node.settings import Settings
from node.types import RankQuery, ServedBy, Source, UserState
from tests.node.conftest import node_settings
from trainer.candidates import CandidateGenerator


class DownStore:
    def get(self, user_id: str, session_id: str = "", now: float | None = None) -> UserState | None:
        raise ConnectionError("feature store is down")


class BrokenSession:
    def run(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("onnxruntime exploded")


class BrokenIndex:
    def search(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("index exploded")


@pytest.fixture(scope="module")
def bundle(bundle_root: Path) -> LoadedBundle:
    return LoadedBundle.load(bundle_root)


@pytest.fixture
def pipeline(bundle: LoadedBundle) -> RankingPipeline:
    return RankingPipeline(Settings.load(env={}), BundleHolder(bundle))


def query(user: str = "u005", n: int = 10) -> RankQuery:
    return RankQuery(user_id=user, surface="home", num_results=n, pool_size=200, request_id="r")


def test_full(pipeline: RankingPipeline) -> None:
    result = pipeline.rank(query())
    assert result.served_by == ServedBy.FULL and len(result.items) == 10
    assert result.features is not None and result.features.matrix.shape[0] == len(result.features.candidates)


def test_feature_store_down_serves_stale_features(bundle: LoadedBundle) -> None:
    down = RankingPipeline(Settings.load(env={}), BundleHolder(bundle), lambda b: DownStore())
    result = down.rank(query())
    assert result.served_by == ServedBy.STALE_FEATURES
    healthy = RankingPipeline(Settings.load(env={}), BundleHolder(bundle)).rank(query())
    assert [i.item_id for i in result.items] == [i.item_id for i in healthy.items]


def test_feature_store_down_and_unknown_user_serves_popularity(
    bundle: LoadedBundle,
) -> None:
    down = RankingPipeline(Settings.load(env={}), BundleHolder(bundle), lambda b: DownStore())
    assert down.rank(query("nobody")).served_by == ServedBy.POPULARITY


def test_broken_ranker_serves_retrieval_order(pipeline: RankingPipeline, bundle: LoadedBundle) -> None:
    broken = dataclasses.replace(bundle, session=BrokenSession())
    result = pipeline.rank(query(), broken)
    assert result.served_by == ServedBy.RETRIEVAL_ORDER
    assert len(result.items) == 10
    assert "score" in result.stages and result.features is not None  # assembled, then scoring failed
    # The first item is the blend's first: the user's nearest ANN neighbour not yet seen.
    assert result.items[0].source == Source.ANN


def test_broken_retrieval_serves_popularity(pipeline: RankingPipeline, bundle: LoadedBundle) -> None:
    gen = bundle.candidates
    broken_gen = CandidateGenerator(BrokenIndex().search, gen.neighbours, gen.item_emb, gen.trending, gen.fresh)
    broken = dataclasses.replace(bundle, candidates=broken_gen)
    result = pipeline.rank(query(), broken)
    assert result.served_by == ServedBy.POPULARITY
    row = bundle.user_index["u005"]
    seen = set(bundle.user_seen_items[bundle.user_seen_indptr[row] : bundle.user_seen_indptr[row + 1]].tolist())
    ids = [bundle.item_index[i.item_id] for i in result.items]
    assert len(ids) == 10 and not set(ids) & seen


def test_broken_reranker_keeps_the_rung(pipeline: RankingPipeline, bundle: LoadedBundle) -> None:
    class BrokenReranker:
        def rerank(self, *args: Any) -> Any:
            raise RuntimeError("reranker exploded")

    result = pipeline.rank(query(), dataclasses.replace(bundle, reranker=BrokenReranker()))
    assert result.served_by == ServedBy.FULL
    scores = [i.score for i in result.items]
    assert scores == sorted(scores, reverse=True)


def test_exploration_marks_explored_items(bundle: LoadedBundle) -> None:
    explorer = RankingPipeline(Settings.load({"epsilon": 1.0}, env={}), BundleHolder(bundle))
    result = explorer.rank(query(n=20))
    assert result.items and all(i.source == Source.EXPLORE for i in result.items)


@pytest.fixture
def stale_node(bundle_root: Path) -> Iterator[Node]:
    with Node(node_settings(bundle_root), feature_store_factory=lambda b: DownStore()).start() as n:
        yield n


def test_stale_features_over_grpc(stale_node: Node) -> None:
    with grpc.insecure_channel(stale_node.target) as channel:
        response = ranker_pb2_grpc.RankerStub(channel).Rank(
            ranker_pb2.RankRequest(user_id="u001", num_results=5), timeout=10
        )
    assert response.served_by == ranker_pb2.SERVED_BY_STALE_FEATURES and len(response.items) == 5


def test_unexpected_error_is_internal_and_generic(
    node: Node, channel: grpc.Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(node.pipeline, "rank", boom)
    with pytest.raises(grpc.RpcError) as e:
        ranker_pb2_grpc.RankerStub(channel).Rank(ranker_pb2.RankRequest(user_id="u001", num_results=5), timeout=10)
    assert e.value.code() == grpc.StatusCode.INTERNAL
    assert e.value.details() == "internal error"
