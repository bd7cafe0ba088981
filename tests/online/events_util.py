"""Building interaction events for the online tests."""

from __future__ import annotations

import time
from typing import Any

from node.gen.edgerank.v1 import events_pb2


def event(
    event_id: str, user_id: str, item_id: str, kind: int = events_pb2.EVENT_TYPE_CLICK, **extra: Any
) -> events_pb2.Event:
    fields: dict[str, Any] = {
        "event_id": event_id,
        "user_id": user_id,
        "item_id": item_id,
        "type": kind,
        "timestamp_ms": int(time.time() * 1000),
        **extra,
    }
    return events_pb2.Event(**fields)
