"""Training rows from what was served: exposures joined with the events that followed them.

Each exposure (one Rank response, logged by the node with the feature rows it
was scored from) becomes one ranking group. An item's label is 1 when a
positive event (:func:`trainer.event_labels.interaction`) for it follows the
exposure within the attribution window: one that names the exposure's request,
or, when the event names no request, one by the same user. The features are
the logged ones, never recomputed, so the ranker trains on exactly what it
will see when serving.
"""

from __future__ import annotations

import base64
import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainer.errors import DataError
from trainer.event_labels import interaction
from trainer.rows import Rows

log = logging.getLogger(__name__)

ATTRIBUTION_WINDOW_S = 1800.0


@dataclass(frozen=True)
class LabelEvent:
    user_id: str
    item_id: str
    request_id: str
    ts: float
    positive: bool


@dataclass(frozen=True)
class LoggedRows:
    rows: Rows
    feature_schema_hash: str
    exposures: int  # exposures read
    groups_kept: int  # exposures with logged features and at least one positive label


def logged_features(doc: dict[str, Any]) -> np.ndarray:
    """The feature rows an exposure was scored from, f32 [len(items), n_features], in rank order."""
    flat = np.frombuffer(base64.b64decode(doc["features"]), dtype="<f4")
    return flat.reshape(len(doc["items"]), int(doc["n_features"])).astype(np.float32)


def join(
    exposures: Iterable[dict[str, Any]],
    events: Iterable[LabelEvent],
    window_s: float = ATTRIBUTION_WINDOW_S,
) -> LoggedRows:
    """One group per exposure with features and a positive label within ``window_s``."""
    by_request: dict[tuple[str, str], list[float]] = defaultdict(list)
    by_user: dict[tuple[str, str], list[float]] = defaultdict(list)
    for e in events:
        if e.positive:
            (by_request[(e.request_id, e.item_id)] if e.request_id else by_user[(e.user_id, e.item_id)]).append(e.ts)
    xs, ys, groups, users, items, scores, nows = [], [], [], [], [], [], []
    schemas: set[str] = set()
    user_ids: dict[str, int] = {}
    n_exposures = 0
    for doc in exposures:
        n_exposures += 1
        if not doc.get("features") or len(doc["items"]) < 2:
            continue
        t0 = float(doc["ts"])

        def followed(ts_list: list[float], t0: float = t0) -> bool:
            return any(t0 <= t <= t0 + window_s for t in ts_list)

        y = np.array(
            [
                followed(by_request.get((doc["request_id"], item), []))
                or followed(by_user.get((doc["user_id"], item), []))
                for item in doc["items"]
            ],
            dtype=np.float32,
        )
        if y.sum() == 0:
            continue
        schemas.add(str(doc["feature_schema_hash"]))
        xs.append(logged_features(doc))
        ys.append(y)
        groups.append(len(y))
        users.append(user_ids.setdefault(doc["user_id"], len(user_ids)))
        items.append(np.zeros(len(y), np.uint32))  # item rows of the serving bundle do not carry over
        scores.append(np.asarray(doc["scores"], np.float32))
        nows.append(t0)
    if not xs:
        raise DataError(f"no exposure among {n_exposures} has logged features and a positive event after it")
    if len(schemas) > 1:
        raise DataError(f"exposures were logged under several feature schemas: {sorted(schemas)}")
    y_all = np.concatenate(ys)
    rows = Rows(
        x=np.concatenate(xs),
        y=y_all,
        groups=np.array(groups, dtype=np.int64),
        users=np.array(users, dtype=np.int64),
        items=np.concatenate(items),
        source=np.zeros(len(y_all), np.uint8),
        retrieval_score=np.concatenate(scores),
        now=np.array(nows, dtype=np.float64),
        n_positives=np.array([int(y.sum()) for y in ys], dtype=np.int64),
    )
    log.info("exposure log: %d exposures, %d groups with a positive, %d rows", n_exposures, len(groups), len(y_all))
    return LoggedRows(rows, schemas.pop(), n_exposures, len(groups))


def read_log(nats_url: str, region: str = "") -> tuple[list[dict[str, Any]], list[LabelEvent]]:
    """Exposures and events of one region (all regions when empty) from JetStream."""
    from node.gen.edgerank.v1 import events_pb2
    from node.nats_link import EVENTS, EXPOSURES
    from trainer.streams import read_subject

    def subject(prefix: str) -> str:
        return f"{prefix}.{region}" if region else f"{prefix}.>"

    exposures = [json.loads(m.data) for m in read_subject(nats_url, EXPOSURES.name, subject(EXPOSURES.prefix))]
    events = []
    for m in read_subject(nats_url, EVENTS.name, subject(EVENTS.prefix)):
        e = events_pb2.Event.FromString(m.data)
        it = interaction(events_pb2.EventType.Name(e.type).removeprefix("EVENT_TYPE_"), e.value)
        events.append(LabelEvent(e.user_id, e.item_id, e.request_id, e.timestamp_ms / 1000.0, bool(it and it.positive)))
    return exposures, events
