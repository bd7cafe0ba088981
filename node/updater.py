"""The feature updater: the events stream in, session and user features in Redis out.

It consumes the region's events with a durable pull consumer. Per batch:

1. one Lua script per event, pipelined, applies it atomically and at most
   once (a per-event mark with ``SET NX`` and a TTL, in the same script as the
   writes): the user's bounded history, counts by type (and NEGATIVE for skips
   and short dwells), the session's events (with a TTL);
2. for each user touched, the packed state is recomputed from the history
   with :func:`trainer.features.user_features` (:mod:`node.history`) for the
   current bundle and written;
3. only then are the messages acked.

A crash anywhere before the ack redelivers the batch: step 1 skips events
already applied, step 2 is a pure function of the history. Redis failing
holds the batch and retries it. Session features are derived where they are
read, with the reader's bundle (:mod:`node.online_store`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nats
import numpy as np
import redis
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from node import feature_keys as keys
from node import user_value
from node.gen.edgerank.v1 import events_pb2
from node.history import history_entry, session_entry, user_arrays
from node.nats_link import EVENTS, RECONNECT_WAIT_S, ensure_stream
from node.settings import Settings
from trainer import bundle as bundle_format
from trainer.event_labels import interaction

log = logging.getLogger(__name__)

# How long an applied event's mark lives: longer than any redelivery.
APPLIED_TTL_S = 7 * 86400
SESSION_EVENTS_MAX = 200
FETCH_WAIT_S = 1.0
BUNDLE_CHECK_S = 2.0

# KEYS: applied mark, history, counts, session. ARGV: mark TTL, history entry or "",
# history max, event type, negative (0/1), session entry or "", session max, session TTL.
APPLY_LUA = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
if ARGV[2] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
end
redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[3], 'NEGATIVE', 1) end
if ARGV[6] ~= '' then
  redis.call('RPUSH', KEYS[4], ARGV[6])
  redis.call('LTRIM', KEYS[4], -tonumber(ARGV[7]), -1)
  redis.call('EXPIRE', KEYS[4], ARGV[8])
end
return 1
"""


@dataclass(frozen=True)
class FeatureTables:
    """What the updater needs of a bundle: item rows, embeddings, genres, batch seen items."""

    path: Path
    head: bytes
    item_index: dict[str, int]
    item_emb: np.ndarray
    item_genre: np.ndarray
    user_index: dict[str, int]
    seen_indptr: np.ndarray
    seen_items: np.ndarray

    @classmethod
    def load(cls, bundle_dir: Path) -> FeatureTables:
        path = bundle_format.resolve(bundle_dir)
        manifest = bundle_format.read_manifest(path)
        bundle_format.verify_files(path, manifest)
        item_ids = np.load(path / "item_ids.npy", allow_pickle=False)
        user_ids = np.load(path / "user_ids.npy", allow_pickle=False)
        return cls(
            path=path,
            head=user_value.header(str(manifest["feature_schema_hash"]), str(manifest["embedding_space_id"])),
            item_index={str(x): i for i, x in enumerate(item_ids.tolist())},
            item_emb=np.load(path / "item_emb.npy", allow_pickle=False),
            item_genre=np.load(path / "item_genre.npy", allow_pickle=False),
            user_index={str(x): i for i, x in enumerate(user_ids.tolist())},
            seen_indptr=np.load(path / "user_seen_indptr.npy", allow_pickle=False),
            seen_items=np.load(path / "user_seen_items.npy", allow_pickle=False),
        )

    def batch_seen(self, user_id: str) -> np.ndarray:
        row = self.user_index.get(user_id)
        if row is None:
            return np.empty(0, np.uint32)
        return self.seen_items[self.seen_indptr[row] : self.seen_indptr[row + 1]].astype(np.uint32)

    def pack(self, user_id: str, history: Sequence[bytes]) -> bytes | None:
        """The packed state of a user from their online history; None if it names no item of the bundle."""
        features, seen = user_arrays(history, self.item_index, self.item_emb, self.item_genre)
        if not features.known:
            return None
        # What the batch features saw stays seen; the online history goes last (most recent last).
        batch = self.batch_seen(user_id)
        if len(batch):
            seen = np.concatenate([batch[~np.isin(batch, seen)], seen])
        return user_value.pack(self.head, features.dense, features.embedding, features.last_ts, seen)


class FeatureUpdater:
    """Applies batches of events to Redis (synchronous; :func:`consume` drives it from the stream)."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None):
        self.settings = settings
        self.redis = client or redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        self._apply = self.redis.register_script(APPLY_LUA)
        self.tables = FeatureTables.load(settings.bundle_dir)
        self.applied = 0
        self.duplicates = 0
        self.invalid = 0

    def refresh_bundle(self) -> None:
        """Follow the bundle root's LATEST: recompute for the new bundle from the next event on."""
        path = bundle_format.resolve(self.settings.bundle_dir)
        if path != self.tables.path:
            self.tables = FeatureTables.load(self.settings.bundle_dir)
            log.info("updater now computes features for bundle %s", path.name)

    def apply(self, events: Sequence[events_pb2.Event]) -> int:
        """Apply events (each at most once) and rewrite the touched users' states; returns new applications."""
        s = self.settings
        pipe = self.redis.pipeline(transaction=False)
        for e in events:
            kind = events_pb2.EventType.Name(e.type).removeprefix("EVENT_TYPE_")
            ts = e.timestamp_ms / 1000.0
            it = interaction(kind, e.value)
            self._apply(
                keys=[
                    keys.applied(e.user_id, e.event_id),
                    keys.history(e.user_id),
                    keys.counts(e.user_id),
                    keys.session(e.user_id, e.session_id),
                ],
                args=[
                    APPLIED_TTL_S,
                    history_entry(ts, it, e.item_id) if it is not None else "",
                    s.history_max,
                    kind,
                    int(it is not None and it.negative),
                    session_entry(ts, kind, e.value, e.item_id) if e.session_id else "",
                    SESSION_EVENTS_MAX,
                    int(s.session_ttl_s),
                ],
                client=pipe,
            )
        fresh = sum(int(r) for r in pipe.execute())
        self.applied += fresh
        self.duplicates += len(events) - fresh
        users = sorted({e.user_id for e in events})
        pipe = self.redis.pipeline(transaction=False)
        for u in users:
            pipe.lrange(keys.history(u), 0, -1)
        histories = pipe.execute()
        pipe = self.redis.pipeline(transaction=False)
        for u, history in zip(users, histories, strict=True):
            value = self.tables.pack(u, history)
            if value is not None:
                pipe.set(keys.state(u), value)
        pipe.execute()
        return fresh

    def close(self) -> None:
        self.redis.close()


def _parse(data: bytes) -> events_pb2.Event | None:
    try:
        return events_pb2.Event.FromString(data)
    except Exception as e:
        log.error("dropping an undecodable event message: %s: %s", type(e).__name__, e)
        return None


async def consume(updater: FeatureUpdater, stop: asyncio.Event, ready: threading.Event | None = None) -> None:
    """Consume the region's events until ``stop`` is set; reconnects and retries on its own."""
    s = updater.settings
    nc = await _connect(s.nats_url, stop)
    if nc is None:
        return
    try:
        js = nc.jetstream(timeout=s.nats_timeout_ms / 1000.0)
        sub = None
        while sub is None and not stop.is_set():
            try:
                await ensure_stream(js, EVENTS)
                sub = await js.pull_subscribe(
                    EVENTS.subject(s.region),
                    durable=f"features-{s.region}",
                    stream=EVENTS.name,
                    config=ConsumerConfig(
                        ack_policy=AckPolicy.EXPLICIT,
                        deliver_policy=DeliverPolicy.ALL,
                        ack_wait=s.updater_ack_wait_s,
                        max_ack_pending=max(1000, 4 * s.updater_batch),
                    ),
                )
            except Exception as e:
                log.warning("cannot bind the events consumer (%s: %s); retrying", type(e).__name__, e)
                await asyncio.sleep(RECONNECT_WAIT_S)
        if ready is not None:
            ready.set()
        loop = asyncio.get_running_loop()
        last_check = loop.time()
        while sub is not None and not stop.is_set():
            try:
                msgs = await sub.fetch(batch=s.updater_batch, timeout=FETCH_WAIT_S)
            except nats.errors.TimeoutError:
                continue
            except Exception as e:
                log.warning("fetch failed (%s: %s); retrying", type(e).__name__, e)
                await asyncio.sleep(RECONNECT_WAIT_S)
                continue
            if loop.time() - last_check > BUNDLE_CHECK_S:
                last_check = loop.time()
                await asyncio.to_thread(updater.refresh_bundle)
            events = [ev for ev in map(_parse, (m.data for m in msgs)) if ev is not None]
            updater.invalid += len(msgs) - len(events)
            while not stop.is_set():
                try:
                    await asyncio.to_thread(updater.apply, events)
                    break
                except redis.RedisError as e:
                    log.warning("redis failed (%s: %s); retrying the batch", type(e).__name__, e)
                    await asyncio.sleep(RECONNECT_WAIT_S)
            else:
                return  # stopping: unacked messages are redelivered to the next updater
            for m in msgs:
                await m.ack()
    finally:
        await nc.close()


async def _connect(url: str, stop: asyncio.Event) -> nats.NATS | None:
    while not stop.is_set():
        try:
            return await nats.connect(
                servers=[url],
                name="edgerank-features",
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=RECONNECT_WAIT_S,
            )
        except Exception as e:
            log.warning("cannot connect to NATS at %s (%s: %s); retrying", url, type(e).__name__, e)
            await asyncio.sleep(RECONNECT_WAIT_S * 5)
    return None


class UpdaterThread:
    """The updater on its own event loop in a thread (for the benchmark and tests)."""

    def __init__(self, settings: Settings):
        self.updater = FeatureUpdater(settings)
        self.ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="feature-updater", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._stop = asyncio.Event()
            await consume(self.updater, self._stop, self.ready)

        try:
            self._loop.run_until_complete(main())
        finally:
            self._loop.close()

    def start(self, timeout_s: float = 10.0) -> UpdaterThread:
        self._thread.start()
        if not self.ready.wait(timeout_s):
            raise TimeoutError("the feature updater did not bind its consumer in time")
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(FETCH_WAIT_S + 5)
        self.updater.close()
