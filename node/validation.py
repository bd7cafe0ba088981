"""Request validation: proto message in, a typed query out, or InvalidArgument naming the field."""

from __future__ import annotations

import math
from collections.abc import Collection

from node.errors import InvalidArgument
from node.gen.edgerank.v1 import events_pb2, ranker_pb2
from node.settings import Settings
from node.types import RankQuery

DEFAULT_SURFACE = "home"
_RATING = events_pb2.EVENT_TYPE_RATING
_DWELL = events_pb2.EVENT_TYPE_DWELL


def _check_id(field: str, value: str, max_len: int, *, required: bool = True) -> None:
    if required and not value:
        raise InvalidArgument(field, "must not be empty")
    if len(value) > max_len:
        raise InvalidArgument(field, f"must be at most {max_len} characters, got {len(value)}")


def rank_query(request: ranker_pb2.RankRequest, settings: Settings, surfaces: Collection[str]) -> RankQuery:
    """Validate a RankRequest against the settings and the served bundle's surfaces."""
    _check_id("user_id", request.user_id, settings.max_id_len)
    n = request.num_results
    if not 1 <= n <= settings.max_num_results:
        raise InvalidArgument("num_results", f"must be in [1, {settings.max_num_results}], got {n}")
    pool = request.candidate_pool_size
    if pool == 0:
        pool = max(settings.default_pool_size, n)
    elif not n <= pool <= settings.max_pool_size:
        raise InvalidArgument(
            "candidate_pool_size",
            f"must be 0 (the default) or in [num_results={n}, {settings.max_pool_size}], got {pool}",
        )
    surface = request.surface or DEFAULT_SURFACE
    if surface not in surfaces:
        raise InvalidArgument(
            "surface",
            f"unknown surface {surface!r}; known: {', '.join(sorted(surfaces))}",
        )
    excludes = request.exclude_item_ids
    if len(excludes) > settings.max_exclude_ids:
        raise InvalidArgument(
            "exclude_item_ids",
            f"at most {settings.max_exclude_ids} ids, got {len(excludes)}",
        )
    for i, item in enumerate(excludes):
        _check_id(f"exclude_item_ids[{i}]", item, settings.max_id_len)
    _check_id("request_id", request.request_id, settings.max_id_len, required=False)
    ctx = request.context
    _check_id("context.session_id", ctx.session_id, settings.max_id_len, required=False)
    if ctx.timestamp_ms < 0:
        raise InvalidArgument("context.timestamp_ms", f"must not be negative, got {ctx.timestamp_ms}")
    return RankQuery(
        user_id=request.user_id,
        surface=surface,
        num_results=n,
        pool_size=pool,
        now_ts=ctx.timestamp_ms / 1000.0 if ctx.timestamp_ms else None,
        exclude_item_ids=tuple(excludes),
        request_id=request.request_id,
        session_id=ctx.session_id,
    )


def log_request(request: events_pb2.LogRequest, settings: Settings) -> int:
    """Validate a LogRequest; returns the number of valid events."""
    events = request.events
    if not events:
        raise InvalidArgument("events", "must not be empty")
    if len(events) > settings.max_events:
        raise InvalidArgument("events", f"at most {settings.max_events} per batch, got {len(events)}")
    limit = settings.max_id_len
    for i, e in enumerate(events):
        at = f"events[{i}]"
        _check_id(f"{at}.event_id", e.event_id, limit)
        _check_id(f"{at}.user_id", e.user_id, limit)
        _check_id(f"{at}.item_id", e.item_id, limit)
        _check_id(f"{at}.session_id", e.session_id, limit, required=False)
        _check_id(f"{at}.request_id", e.request_id, limit, required=False)
        if e.type == events_pb2.EVENT_TYPE_UNSPECIFIED or e.type not in events_pb2.EventType.values():
            raise InvalidArgument(f"{at}.type", f"must be a known event type, got {e.type}")
        if e.timestamp_ms <= 0:
            raise InvalidArgument(f"{at}.timestamp_ms", f"must be positive, got {e.timestamp_ms}")
        if math.isnan(e.value):
            raise InvalidArgument(f"{at}.value", "must be a number, got NaN")
        if e.type == _RATING and not 0.0 <= e.value <= 5.0:
            raise InvalidArgument(f"{at}.value", f"a rating must be in [0, 5], got {e.value}")
        if e.type == _DWELL and e.value < 0:
            raise InvalidArgument(f"{at}.value", f"a dwell time must not be negative, got {e.value}")
        if e.position < 0:
            raise InvalidArgument(f"{at}.position", f"must not be negative, got {e.position}")
    return len(events)
