"""Events.Log validation over a real in-process gRPC server."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from node.gen.edgerank.v1 import events_pb2, events_pb2_grpc


def event(**fields: Any) -> events_pb2.Event:
    base: dict[str, Any] = {
        "event_id": "e1",
        "user_id": "u001",
        "item_id": "i1",
        "type": events_pb2.EVENT_TYPE_CLICK,
        "timestamp_ms": 1_700_000_000_000,
    }
    return events_pb2.Event(**{**base, **fields})


def log(channel: grpc.Channel, events: list[events_pb2.Event]) -> events_pb2.LogResponse:
    response: events_pb2.LogResponse = events_pb2_grpc.EventsStub(channel).Log(
        events_pb2.LogRequest(events=events), timeout=10
    )
    return response


def test_valid_batch_is_accepted(channel: grpc.Channel) -> None:
    batch = [
        event(event_id="a"),
        event(event_id="b", type=events_pb2.EVENT_TYPE_RATING, value=4.5),
        event(event_id="c", type=events_pb2.EVENT_TYPE_DWELL, value=12.0, position=3),
    ]
    assert log(channel, batch).accepted == 3


@pytest.mark.parametrize(
    ("events", "field"),
    [
        ([], "events"),
        ([event()] * 1001, "events"),
        ([event(), event(event_id="")], "events[1].event_id"),
        ([event(user_id="")], "events[0].user_id"),
        ([event(), event(), event(item_id="")], "events[2].item_id"),
        ([event(item_id="x" * 129)], "events[0].item_id"),
        ([event(type=events_pb2.EVENT_TYPE_UNSPECIFIED)], "events[0].type"),
        ([event(type=42)], "events[0].type"),
        ([event(timestamp_ms=0)], "events[0].timestamp_ms"),
        ([event(timestamp_ms=-5)], "events[0].timestamp_ms"),
        ([event(type=events_pb2.EVENT_TYPE_RATING, value=5.5)], "events[0].value"),
        ([event(type=events_pb2.EVENT_TYPE_RATING, value=-1)], "events[0].value"),
        ([event(type=events_pb2.EVENT_TYPE_DWELL, value=-0.1)], "events[0].value"),
        (
            [event(type=events_pb2.EVENT_TYPE_DWELL, value=float("nan"))],
            "events[0].value",
        ),
        ([event(position=-1)], "events[0].position"),
    ],
)
def test_invalid_events_name_the_field(channel: grpc.Channel, events: list[events_pb2.Event], field: str) -> None:
    with pytest.raises(grpc.RpcError) as e:
        log(channel, events)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details().startswith(f"{field}: ")
