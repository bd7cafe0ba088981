"""The online feature store: Redis, with a local stale-while-revalidate cache beside it.

One pipelined round trip per request reads the user's packed state and, when
the request names a session, the session's events. A value packed for another
feature schema or embedding space is never used with this bundle. The state's
session block is filled in for the request's time from the recent
interactions the state carries, with this bundle's item genres: the same
:func:`trainer.features.session_block` the trainer computes offline. When Redis
is slower than its budget (the socket timeout) or down, the store raises
:class:`~node.feature_store.StaleFeatures` at once, carrying the last state it
read for the user (the local cache), so that the pipeline serves
STALE_FEATURES; after a failure it does not try Redis again for
``redis_retry_ms``, so that an outage costs each request nothing, and it
recovers by itself when Redis answers again.

A user with no online state is served from the bundle's batch features (FULL):
nothing newer is known about them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from node import feature_keys as keys
from node import metrics, user_value
from node.bundle import LoadedBundle
from node.feature_store import EmbeddedFeatureStore, FeatureStoreFactory, StaleFeatures
from node.history import parse_session, session_state
from node.settings import Settings
from node.types import UserState
from trainer.event_labels import interaction

log = logging.getLogger(__name__)


class FeatureCache:
    """A bounded LRU of the last state read per key, with its age."""

    def __init__(self, size: int, max_age_s: float):
        self._size, self._max_age = size, max_age_s
        self._entries: OrderedDict[tuple[str, str], tuple[float, UserState | None]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: tuple[str, str], state: UserState | None) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic(), state)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def get(self, key: tuple[str, str]) -> UserState | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > self._max_age:
            return None
        return entry[1]


class RedisLink:
    """The node's Redis client: no retries, a socket timeout of a few ms, a hold-off after a failure."""

    def __init__(self, url: str, timeout_ms: float, retry_ms: float):
        timeout = timeout_ms / 1000.0
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._retry_s = retry_ms / 1000.0
        self._down_until = 0.0

    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def failed(self) -> None:
        self._down_until = time.monotonic() + self._retry_s

    def read(self, user_id: str, session_id: str) -> tuple[bytes | None, list[bytes]]:
        """The user's packed state and the session's events, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(keys.state(user_id))
        if session_id:
            pipe.lrange(keys.session(user_id, session_id), 0, -1)
        out = pipe.execute()
        return out[0], (out[1] if session_id else [])

    def close(self) -> None:
        self.client.close()


class RedisFeatureStore:
    """The online store for one bundle (made by :func:`redis_store_factory`)."""

    def __init__(self, bundle: LoadedBundle, link: RedisLink, cache: FeatureCache):
        self._bundle, self._link, self._cache = bundle, link, cache
        self._batch = EmbeddedFeatureStore(bundle)
        self._item_genre = bundle.item_genre  # a view of the bundle's mapped item rows
        self._head = user_value.header(
            str(bundle.manifest["feature_schema_hash"]), str(bundle.manifest["embedding_space_id"])
        )

    def get(self, user_id: str, session_id: str = "", now: float | None = None) -> UserState | None:
        key = (user_id, session_id)
        if not self._link.available():
            metrics.FEATURE_LOOKUPS.labels("stale").inc()
            raise StaleFeatures("redis is held off after a failure", self._cache.get(key))
        try:
            value, session = self._link.read(user_id, session_id)
        except redis.RedisError as e:
            self._link.failed()
            metrics.FEATURE_LOOKUPS.labels("error").inc()
            log.warning("redis read failed (%s: %s); serving stale features", type(e).__name__, e)
            raise StaleFeatures(f"redis: {type(e).__name__}: {e}", self._cache.get(key)) from e
        if value is None:
            metrics.FEATURE_LOOKUPS.labels("miss").inc()
            state = self._batch.get(user_id)
        else:
            try:
                state, recent = user_value.read(self._head, value)
            except ValueError as e:
                outcome = "mismatch" if isinstance(e, user_value.MismatchedValue) else "corrupt"
                metrics.FEATURE_LOOKUPS.labels(outcome).inc()
                log.debug("user %r: online value not usable with bundle %s: %s", user_id, self._bundle.version, e)
                raise StaleFeatures(f"online value: {e}", self._cache.get(key)) from e
            metrics.FEATURE_LOOKUPS.labels("hit").inc()
            state = session_state(state, recent, time.time() if now is None else now, self._item_genre)
        if state is not None and session:
            state = self._with_session(state, session)
        self._cache.put(key, state)
        return state

    def _with_session(self, state: UserState, entries: list[bytes]) -> UserState:
        """Items the user skipped or left quickly in this session are not served again."""
        index = self._bundle.item_index
        negative = [
            index[e.item_id]
            for e in parse_session(entries)
            if e.item_id in index and (it := interaction(e.kind, e.value)) is not None and it.negative
        ]
        if not negative:
            return state
        # Before the history: the last seen item seeds session continuation.
        seen = np.concatenate([np.array(negative, dtype=np.uint32), state.seen])
        return UserState(state.dense, state.embedding, state.genre, state.last_ts, seen)


def redis_store_factory(settings: Settings) -> tuple[FeatureStoreFactory, Callable[[], None]]:
    """A factory of per-bundle Redis stores sharing one client, and a function that closes it."""
    link = RedisLink(settings.redis_url, settings.redis_timeout_ms, settings.redis_retry_ms)

    def factory(bundle: LoadedBundle) -> RedisFeatureStore:
        cache = FeatureCache(settings.feature_cache_size, settings.feature_cache_max_age_s)
        return RedisFeatureStore(bundle, link, cache)

    return factory, link.close
