"""Events in, fresher ranking out, exposures logged: a node wired to real Redis and NATS."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from node.gen.edgerank.v1 import events_pb2, events_pb2_grpc, ranker_pb2, ranker_pb2_grpc
from node.nats_link import EVENTS, EXPOSURES
from node.server import Node
from node.settings import Settings
from node.updater import UpdaterThread
from tests.online.events_util import event
from trainer.exposures import logged_features
from trainer.streams import read_subject

NOW_MS = 1_700_003_600_000


@pytest.fixture
def node(settings: Settings) -> Iterator[Node]:
    with Node(settings).start() as n:
        assert n.feedback is not None and n.feedback.link.wait_connected(10)
        yield n


@pytest.fixture
def channel(node: Node) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(node.target) as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield ch


def rank(channel: grpc.Channel, user: str, **extra: Any) -> ranker_pb2.RankResponse:
    request = ranker_pb2.RankRequest(
        user_id=user, num_results=10, context=ranker_pb2.Context(timestamp_ms=NOW_MS), **extra
    )
    response: ranker_pb2.RankResponse = ranker_pb2_grpc.RankerStub(channel).Rank(request, timeout=10)
    return response


def log(channel: grpc.Channel, events: list[events_pb2.Event]) -> int:
    stub = events_pb2_grpc.EventsStub(channel)
    accepted: int = stub.Log(events_pb2.LogRequest(events=events), timeout=10).accepted
    return accepted


def test_a_click_reaches_the_next_ranking(settings: Settings, channel: grpc.Channel) -> None:
    updater = UpdaterThread(settings).start()
    try:
        user = "u001"
        before = rank(channel, user)
        assert before.served_by == ranker_pb2.SERVED_BY_FULL
        top = before.items[0].item_id
        assert log(channel, [event(f"{settings.region}-click", user, top)]) == 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            after = rank(channel, user)
            if top not in [i.item_id for i in after.items]:
                break
        else:
            pytest.fail(f"{top} was still ranked 10 s after the click was logged")
        assert after.served_by == ranker_pb2.SERVED_BY_FULL
    finally:
        updater.stop()


def test_a_retried_event_is_stored_once(settings: Settings, channel: grpc.Channel) -> None:
    batch = [event(f"{settings.region}-e{k}", "u002", f"i{k}") for k in range(5)]
    assert log(channel, batch) == 5
    assert log(channel, batch) == 5
    assert log(channel, batch[2:3]) == 1
    stored = read_subject(settings.nats_url, EVENTS.name, EVENTS.subject(settings.region))
    assert [m.msg_id for m in stored] == [e.event_id for e in batch]
    assert [events_pb2.Event.FromString(m.data) for m in stored] == batch


def test_every_response_is_logged_with_its_features(settings: Settings, node: Node, channel: grpc.Channel) -> None:
    responses = [rank(channel, f"u{k:03d}", request_id=f"r{k}") for k in range(20)]
    responses.append(rank(channel, "stranger"))  # popularity: no features
    node.stop(grace=0)  # drains the exposure queue
    stored = read_subject(settings.nats_url, EXPOSURES.name, EXPOSURES.subject(settings.region))
    docs = [json.loads(m.data) for m in stored]
    assert [d["request_id"] for d in docs] == [r.request_id for r in responses]
    assert docs[-1]["request_id"]  # the node named the request the client did not
    for doc, response in zip(docs, responses, strict=True):
        assert doc["items"] == [i.item_id for i in response.items]
        assert doc["positions"] == list(range(1, len(response.items) + 1))
        assert doc["bundle_version"] == response.bundle_version and doc["region"] == settings.region
        assert doc["served_by"] == ranker_pb2.ServedBy.Name(response.served_by).removeprefix("SERVED_BY_")
    features = logged_features(docs[0])
    assert features.shape == (10, docs[0]["n_features"])
    assert np.all(np.isfinite(features))
    assert docs[-1]["features"] is None
