"""Rank over a real in-process gRPC server."""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
import pytest

from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc
from node.server import Node
from tests.node.synthetic_bundle import NOW

PIPELINE_STAGES = ["features", "retrieve", "blend", "assemble", "score", "rerank"]


def rank(channel: grpc.Channel, **fields: Any) -> ranker_pb2.RankResponse:
    fields.setdefault("user_id", "u001")
    fields.setdefault("num_results", 10)
    response: ranker_pb2.RankResponse = ranker_pb2_grpc.RankerStub(channel).Rank(
        ranker_pb2.RankRequest(**fields), timeout=10
    )
    return response


def test_happy_path(node: Node, channel: grpc.Channel) -> None:
    bundle = node.holder.snapshot()
    response = rank(channel, user_id="u001", num_results=10, request_id="r-1")
    assert response.served_by == ranker_pb2.SERVED_BY_FULL
    assert len(response.items) == 10
    assert [i.rank for i in response.items] == list(range(1, 11))
    assert response.bundle_version == bundle.version
    assert response.model_version == "linear-i-0"
    assert response.experiment_arm == "champion"
    assert response.request_id == "r-1"
    assert [s.stage for s in response.stages] == PIPELINE_STAGES
    assert all(s.ms >= 0 for s in response.stages) and response.total_ms > 0
    ids = [i.item_id for i in response.items]
    assert len(set(ids)) == 10 and all(i in bundle.item_index for i in ids)
    scores = [i.score for i in response.items]
    assert all(0.0 < s < 1.0 for s in scores)
    assert all(
        i.source
        in (
            ranker_pb2.SOURCE_ANN,
            ranker_pb2.SOURCE_SESSION,
            ranker_pb2.SOURCE_TRENDING,
            ranker_pb2.SOURCE_FRESH,
        )
        for i in response.items
    )


def test_never_returns_seen_or_excluded_items(node: Node, channel: grpc.Channel) -> None:
    bundle = node.holder.snapshot()
    row = bundle.user_index["u002"]
    seen = bundle.user_seen_items[bundle.user_seen_indptr[row] : bundle.user_seen_indptr[row + 1]]
    first = rank(channel, user_id="u002", num_results=20)
    excluded = [i.item_id for i in first.items[:5]] + ["not-in-catalog"]
    second = rank(channel, user_id="u002", num_results=20, exclude_item_ids=excluded)
    ids = {i.item_id for i in second.items}
    assert not ids & set(excluded)
    assert not ids & {str(bundle.item_ids[i]) for i in seen}


def test_genre_cap_and_determinism(node: Node, channel: grpc.Channel) -> None:
    bundle = node.holder.snapshot()
    ts = int(NOW * 1000)
    a = rank(
        channel,
        user_id="u003",
        num_results=12,
        context=ranker_pb2.Context(timestamp_ms=ts),
    )
    b = rank(
        channel,
        user_id="u003",
        num_results=12,
        context=ranker_pb2.Context(timestamp_ms=ts),
    )
    assert [i.item_id for i in a.items] == [i.item_id for i in b.items]
    primary = np.load(bundle.path / "item_primary_genre.npy")
    genres = np.bincount([primary[bundle.item_index[i.item_id]] for i in a.items])
    # 5 genres x max_per_genre 3 = 15 >= 12: the cap must hold.
    assert genres.max() <= node.settings.max_per_genre


def test_unknown_user_gets_popularity(node: Node, channel: grpc.Channel) -> None:
    bundle = node.holder.snapshot()
    response = rank(channel, user_id="someone-new", num_results=5, surface="trending")
    assert response.served_by == ranker_pb2.SERVED_BY_POPULARITY
    expected = [str(bundle.item_ids[i]) for i in bundle.popularity["trending"][:5]]
    assert [i.item_id for i in response.items] == expected
    assert all(i.source == ranker_pb2.SOURCE_POPULAR for i in response.items)
    assert [i.score for i in response.items] == sorted((i.score for i in response.items), reverse=True)


def test_unknown_user_popularity_respects_excludes(node: Node, channel: grpc.Channel) -> None:
    bundle = node.holder.snapshot()
    top = [str(bundle.item_ids[i]) for i in bundle.popularity["global"][:3]]
    response = rank(channel, user_id="someone-new", num_results=5, exclude_item_ids=top)
    assert len(response.items) == 5 and not {i.item_id for i in response.items} & set(top)


def test_empty_surface_means_home(node: Node, channel: grpc.Channel) -> None:
    response = rank(channel, user_id="someone-new", num_results=3, surface="")
    bundle = node.holder.snapshot()
    assert [i.item_id for i in response.items] == [str(bundle.item_ids[i]) for i in bundle.popularity["global"][:3]]


def test_large_request_within_limits(node: Node, channel: grpc.Channel) -> None:
    response = rank(channel, user_id="u004", num_results=1000, candidate_pool_size=1500)
    assert response.served_by == ranker_pb2.SERVED_BY_FULL
    assert len(response.items) == 1000


LONG = "x" * 129


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        ({"user_id": ""}, "user_id"),
        ({"user_id": LONG}, "user_id"),
        ({"num_results": 0}, "num_results"),
        ({"num_results": -3}, "num_results"),
        ({"num_results": 1001}, "num_results"),
        ({"num_results": 10, "candidate_pool_size": 5}, "candidate_pool_size"),
        ({"candidate_pool_size": 5001}, "candidate_pool_size"),
        ({"candidate_pool_size": -1}, "candidate_pool_size"),
        ({"surface": "kitchen"}, "surface"),
        ({"exclude_item_ids": ["a"] * 1001}, "exclude_item_ids"),
        ({"exclude_item_ids": ["a", "b", "c", ""]}, "exclude_item_ids[3]"),
        ({"exclude_item_ids": ["a", LONG]}, "exclude_item_ids[1]"),
        ({"context": ranker_pb2.Context(timestamp_ms=-1)}, "context.timestamp_ms"),
        ({"request_id": LONG}, "request_id"),
    ],
)
def test_invalid_argument_names_the_field(channel: grpc.Channel, fields: dict[str, Any], field_name: str) -> None:
    with pytest.raises(grpc.RpcError) as e:
        rank(channel, **fields)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details().startswith(f"{field_name}: ")


def test_invalid_messages_are_readable(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as e:
        rank(channel, num_results=0)
    assert e.value.details() == "num_results: must be in [1, 1000], got 0"
    with pytest.raises(grpc.RpcError) as e:
        rank(channel, surface="kitchen")
    assert e.value.details() == "surface: unknown surface 'kitchen'; known: home, new, trending"
