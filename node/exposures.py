"""Exposure logging: every Rank response, with the feature values it was scored from.

:meth:`ExposureLog.log` only enqueues (a bounded queue), so the request does
not wait for NATS; a background thread publishes batches through a
:class:`node.publisher.DurablePublisher` (acked, or spooled while NATS is
down). When the queue is full the request spools its exposure itself rather
than drop it. On close the queue is drained.

An exposure is one JSON document (:func:`encode`); ``features`` holds the
assembled rows of the shown items, f32 little-endian, base64, in rank order.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import queue
import threading
import time
import uuid
from typing import Any

import numpy as np

from node.bundle import LoadedBundle
from node.nats_link import EXPOSURES
from node.publisher import DurablePublisher
from node.spool import Record
from node.types import RankQuery, RankResult

log = logging.getLogger(__name__)

BATCH = 64
_STOP = None


def encode(query: RankQuery, result: RankResult, bundle: LoadedBundle, region: str) -> dict[str, Any]:
    ids = [i.item_id for i in result.items]
    features = None
    snap = result.features
    if snap is not None and ids:
        matrix: np.ndarray | None
        if len(snap.candidates) == len(ids) and bundle.item_ids[snap.candidates].tolist() == ids:
            # The pipeline keeps the shown items' rows, in rank order.
            matrix = np.ascontiguousarray(snap.matrix, dtype="<f4")
        else:
            row_of = {c: r for r, c in enumerate(snap.candidates.tolist())}
            rows = [row_of.get(bundle.item_index.get(i, -1)) for i in ids]
            found = all(r is not None for r in rows)
            matrix = np.ascontiguousarray(snap.matrix[np.array(rows, dtype=np.intp)], dtype="<f4") if found else None
        if matrix is not None:
            features = base64.b64encode(matrix.tobytes()).decode()
    return {
        "exposure_id": uuid.uuid4().hex,
        "request_id": result.request_id,
        "user_id": query.user_id,
        "session_id": query.session_id,
        "surface": query.surface,
        "ts": snap.now_ts if snap is not None else (query.now_ts or time.time()),
        "logged_at": time.time(),
        "region": region,
        "bundle_version": result.bundle_version,
        "model_version": result.model_version,
        "feature_schema_hash": bundle.manifest.get("feature_schema_hash"),
        "embedding_space_id": bundle.manifest.get("embedding_space_id"),
        "served_by": result.served_by.name,
        "arm": result.experiment_arm,
        "items": ids,
        "positions": [i.rank for i in result.items],
        "sources": [i.source.name for i in result.items],
        "scores": [i.score for i in result.items],
        "n_features": bundle.n_features,
        "features": features,
    }


class ExposureLog:
    def __init__(self, publisher: DurablePublisher, region: str, maxsize: int):
        self.publisher, self.region = publisher, region
        self.subject = EXPOSURES.subject(region)
        self._queue: queue.Queue[tuple[RankQuery, RankResult, LoadedBundle] | None] = queue.Queue(maxsize)
        self.spooled_inline = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="exposures", daemon=True)
        self._thread.start()

    @staticmethod
    def identify(query: RankQuery) -> RankQuery:
        """Give a request without an id one, so that events can name the response that showed an item."""
        return query if query.request_id else dataclasses.replace(query, request_id=uuid.uuid4().hex)

    def log(self, query: RankQuery, result: RankResult, bundle: LoadedBundle) -> None:
        try:
            self._queue.put_nowait((query, result, bundle))
        except queue.Full:
            self.spooled_inline += 1
            self.publisher.spool_now([self._record(query, result, bundle)])

    def _record(self, query: RankQuery, result: RankResult, bundle: LoadedBundle) -> Record:
        doc = encode(query, result, bundle, self.region)
        return Record(self.subject, doc["exposure_id"], json.dumps(doc, separators=(",", ":")).encode())

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            batch = []
            while item is not _STOP:
                batch.append(item)
                if len(batch) >= BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            stopping = item is _STOP
            records = []
            for entry in batch:
                try:
                    records.append(self._record(*entry))
                except Exception:
                    self.dropped += 1
                    log.exception("cannot encode an exposure; dropped (%d so far)", self.dropped)
            try:
                self.publisher.publish(records)
            except Exception:
                self.dropped += len(records)
                log.exception("cannot publish or spool %d exposures (%d lost so far)", len(records), self.dropped)
            for _ in range(len(batch) + int(stopping)):
                self._queue.task_done()

    def flush(self) -> None:
        """Block until every exposure queued so far is published or spooled."""
        self._queue.join()

    def close(self) -> None:
        """Deliver what is queued (published or spooled), then stop."""
        self._queue.put(_STOP)
        self._thread.join()
