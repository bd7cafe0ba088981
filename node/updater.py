"""The feature updater: the events stream in, session and user features in Redis out.

It consumes the region's events with a durable pull consumer. Per batch:

1. the first time it touches a user, one Lua script seeds the user's history
   with their batch interactions from the bundle (``user_seen_*.npy``), at
   most once (a ``seeded`` mark, set in the same script as the pushes, in
   front of what the history already holds), so that the online features are
   those of the batch history plus the online events;
2. one Lua script per event, pipelined, applies it atomically and at most
   once (a per-event mark with ``SET NX`` and a TTL, in the same script as the
   writes): the user's bounded history, counts by type (and NEGATIVE for skips
   and short dwells), the session's events (with a TTL); every change to a
   history increments its version;
3. for each user touched, the packed state is recomputed from the history
   with :func:`trainer.features.user_features` (:mod:`node.history`) for the
   current bundle, and written only if no state of a newer history version is
   there (:data:`WRITE_LUA`);
4. only then are the messages acked.

A crash anywhere before the ack redelivers the batch: steps 1 and 2 skip what
was already applied, step 3 is a pure function of the history. Redis failing
holds the batch and retries it.

When the bundle changes (:meth:`FeatureUpdater.refresh_bundle`, or at start
when the last complete sweep was for another bundle), a background
:class:`Sweep` rewrites the state of every user with an online history for
the new bundle, a SCAN batch at a time, while events keep flowing. The
versioned write makes the order safe: a sweep that read a history before an
event landed never overwrites the state computed after it. Until the sweep
reaches a user, a node serving the new bundle finds a value of the old one
and serves STALE_FEATURES (and counts it); it never uses it.

Session features are derived where they are read, with the reader's bundle
and the request's time (:mod:`node.online_store`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nats
import numpy as np
import redis
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from node import feature_keys as keys
from node import user_value
from node.gen.edgerank.v1 import events_pb2
from node.history import history_entry, seed_entries, session_entry, user_arrays
from node.nats_link import EVENTS, RECONNECT_WAIT_S, ensure_stream
from node.settings import Settings
from trainer import bundle as bundle_format
from trainer.event_labels import interaction
from trainer.rows import ItemTables

log = logging.getLogger(__name__)

# How long an applied event's mark lives: longer than any redelivery.
APPLIED_TTL_S = 7 * 86400
SESSION_EVENTS_MAX = 200
FETCH_WAIT_S = 1.0
BUNDLE_CHECK_S = 2.0
SWEEP_BATCH = 500
SEED_FILES = ("user_seen_ts.npy", "user_seen_values.npy", "user_seen_positive.npy")

# KEYS: applied mark, history, counts, session, history version. ARGV: mark TTL, history entry or "",
# history max, event type, negative (0/1), session entry or "", session max, session TTL.
APPLY_LUA = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
if ARGV[2] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
  redis.call('INCR', KEYS[5])
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

# KEYS: seeded mark, history, history version. ARGV: history max, then the batch entries newest first.
# Seeds once per user (the mark has no TTL), in front of whatever the history already holds.
SEED_LUA = """
if not redis.call('SET', KEYS[1], '1', 'NX') then return 0 end
if #ARGV > 1 then
  for i = 2, #ARGV do redis.call('LPUSH', KEYS[2], ARGV[i]) end
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[1]), -1)
  redis.call('INCR', KEYS[3])
end
return 1
"""

# KEYS: history version, history. Both at once, so that the version names exactly this history.
READ_LUA = """
return {tonumber(redis.call('GET', KEYS[1]) or '0'), redis.call('LRANGE', KEYS[2], 0, -1)}
"""

# KEYS: state, state version. ARGV: value ("" = none usable: delete), history version, header.
# A state of a newer history is never overwritten; one of the same history only by another bundle's.
WRITE_LUA = """
local cur = redis.call('GET', KEYS[2])
if cur then
  cur = tonumber(cur)
  local v = tonumber(ARGV[2])
  if cur > v then return 0 end
  if cur == v and redis.call('GETRANGE', KEYS[1], 0, string.len(ARGV[3]) - 1) == ARGV[3] then return 0 end
end
if ARGV[1] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""


@dataclass(frozen=True)
class FeatureTables:
    """What the updater needs of a bundle: item rows, embeddings, genres, batch interactions."""

    path: Path
    head: bytes
    item_ids: np.ndarray
    item_index: dict[str, int]
    item_emb: np.ndarray
    item_genre: np.ndarray
    user_index: dict[str, int]
    seen_indptr: np.ndarray
    seen_items: np.ndarray
    # The seen rows' times, values and labels (None for a bundle without them: no seeding).
    seen_ts: np.ndarray | None = None
    seen_values: np.ndarray | None = None
    seen_positive: np.ndarray | None = None

    @classmethod
    def load(cls, bundle_dir: Path) -> FeatureTables:
        path = bundle_format.resolve(bundle_dir)
        manifest = bundle_format.read_manifest(path)
        bundle_format.verify_files(path, manifest)

        def npy(name: str) -> np.ndarray:
            return np.load(path / name, allow_pickle=False)

        item_ids = npy("item_ids.npy")
        items = ItemTables.open(path, manifest)  # views of the mapped item rows
        user_ids = npy("user_ids.npy")
        seen_items = npy("user_seen_items.npy")
        listed = set(manifest.get("files", {}))
        seed: list[np.ndarray | None] = [None, None, None]
        if all(name in listed for name in SEED_FILES):
            seed = [npy(name) for name in SEED_FILES]
            if any(len(a) != len(seen_items) for a in seed if a is not None):
                raise bundle_format.BundleError(f"{path}: the user_seen_* arrays differ in length")
        else:
            log.warning("bundle %s has no %s: online histories are not seeded", path.name, "/".join(SEED_FILES))
        return cls(
            path=path,
            head=user_value.header(str(manifest["feature_schema_hash"]), str(manifest["embedding_space_id"])),
            item_ids=item_ids,
            item_index={str(x): i for i, x in enumerate(item_ids.tolist())},
            item_emb=items.emb,
            item_genre=items.genre,
            user_index={str(x): i for i, x in enumerate(user_ids.tolist())},
            seen_indptr=npy("user_seen_indptr.npy"),
            seen_items=seen_items,
            seen_ts=seed[0],
            seen_values=seed[1],
            seen_positive=seed[2],
        )

    @property
    def can_seed(self) -> bool:
        return self.seen_ts is not None

    def _rows(self, user_id: str) -> slice | None:
        row = self.user_index.get(user_id)
        return None if row is None else slice(int(self.seen_indptr[row]), int(self.seen_indptr[row + 1]))

    def batch_seen(self, user_id: str) -> np.ndarray:
        rows = self._rows(user_id)
        return np.empty(0, np.uint32) if rows is None else self.seen_items[rows].astype(np.uint32)

    def seed(self, user_id: str, limit: int) -> list[str]:
        """The user's last ``limit`` batch interactions as history entries, oldest first."""
        rows = self._rows(user_id)
        if rows is None or self.seen_ts is None or self.seen_values is None or self.seen_positive is None:
            return []
        start = max(rows.start, rows.stop - limit)
        at = slice(start, rows.stop)
        items = self.item_ids[self.seen_items[at].astype(np.int64)].tolist()
        return seed_entries(self.seen_ts[at], self.seen_values[at], self.seen_positive[at], [str(i) for i in items])

    def pack(self, user_id: str, history: Sequence[bytes]) -> bytes | None:
        """The packed state of a user from their online history; None if it names no item of the bundle."""
        features, seen, recent = user_arrays(history, self.item_index, self.item_emb, self.item_genre)
        if not features.known:
            return None
        # What the batch features saw stays seen; the online history goes last (most recent last).
        batch = self.batch_seen(user_id)
        if len(batch):
            seen = np.concatenate([batch[~np.isin(batch, seen)], seen])
        return user_value.pack(self.head, features.dense, features.embedding, features.last_ts, seen, recent)


@dataclass
class Sweep:
    """Rewrites the state of every user with an online history for one bundle, in a thread of its own."""

    updater: FeatureUpdater
    tables: FeatureTables
    batch: int = SWEEP_BATCH
    users: int = 0
    written: int = 0
    seconds: float = 0.0
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Sweep:
        threading.Thread(target=self._run, name=f"sweep-{self.tables.path.name}", daemon=True).start()
        return self

    def cancel(self) -> None:
        self.cancelled.set()

    def wait(self, timeout_s: float) -> bool:
        """True once the sweep has finished (completed or cancelled)."""
        return self.done.wait(timeout_s)

    def _run(self) -> None:
        t0 = time.monotonic()
        try:
            if self._sweep():
                self.seconds = time.monotonic() - t0
                log.info(
                    "swept %d online users for bundle %s in %.1f s (%d states rewritten)",
                    self.users, self.tables.path.name, self.seconds, self.written,
                )  # fmt: skip
        finally:
            self.done.set()

    def _sweep(self) -> bool:
        """Every history key, a SCAN batch at a time; False if cancelled."""
        client = self.updater.redis
        cursor = 0
        while not self.cancelled.is_set():
            try:
                following, found = client.scan(cursor, match=keys.HISTORY_PATTERN, count=self.batch)
                users = sorted({keys.user_of_history(k) for k in found})
                self.written += self.updater.recompute(users, self.tables)
                self.users += len(users)
                if following == 0 and not self.cancelled.is_set():
                    client.set(keys.SWEPT, self.tables.head)
                    return True
            except redis.RedisError as e:
                log.warning("sweep: redis failed (%s: %s); retrying the batch", type(e).__name__, e)
                self.cancelled.wait(RECONNECT_WAIT_S)
                continue
            cursor = following
        return False


class FeatureUpdater:
    """Applies batches of events to Redis (synchronous; :func:`consume` drives it from the stream)."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None):
        self.settings = settings
        self.redis = client or redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        self._apply = self.redis.register_script(APPLY_LUA)
        self._seed = self.redis.register_script(SEED_LUA)
        self._read = self.redis.register_script(READ_LUA)
        self._write = self.redis.register_script(WRITE_LUA)
        self.tables = FeatureTables.load(settings.bundle_dir)
        self.sweep: Sweep | None = None
        self.applied = 0
        self.duplicates = 0
        self.invalid = 0
        self.seeded = 0

    def refresh_bundle(self) -> None:
        """Follow the bundle root's LATEST: recompute every online user's state for a new bundle."""
        path = bundle_format.resolve(self.settings.bundle_dir)
        if path != self.tables.path:
            self.tables = FeatureTables.load(self.settings.bundle_dir)
            log.info("updater now computes features for bundle %s", path.name)
            self.start_sweep()

    def sweep_if_needed(self) -> None:
        """Sweep unless the last complete sweep was for this bundle's schema and embedding space."""
        if self.redis.get(keys.SWEPT) != self.tables.head:
            self.start_sweep()

    def start_sweep(self) -> Sweep:
        """Rewrite every online user's state for the current bundle (a running sweep is cancelled)."""
        if self.sweep is not None:
            self.sweep.cancel()
        self.sweep = Sweep(self, self.tables).start()
        return self.sweep

    def apply(self, events: Sequence[events_pb2.Event]) -> int:
        """Apply events (each at most once) and rewrite the touched users' states; returns new applications."""
        s = self.settings
        tables = self.tables
        users = sorted({e.user_id for e in events})
        unseeded: list[str] = []
        if tables.can_seed:
            pipe = self.redis.pipeline(transaction=False)
            for u in users:
                pipe.exists(keys.seeded(u))
            unseeded = [u for u, marked in zip(users, pipe.execute(), strict=True) if not marked]
        pipe = self.redis.pipeline(transaction=False)
        for u in unseeded:
            entries = tables.seed(u, s.history_max)
            self._seed(
                keys=[keys.seeded(u), keys.history(u), keys.history_version(u)],
                args=[s.history_max, *reversed(entries)],
                client=pipe,
            )
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
                    keys.history_version(e.user_id),
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
        results = pipe.execute()
        self.seeded += sum(int(r) for r in results[: len(unseeded)])
        fresh = sum(int(r) for r in results[len(unseeded) :])
        self.applied += fresh
        self.duplicates += len(events) - fresh
        self.recompute(users, tables)
        return fresh

    def read_histories(self, users: Sequence[str]) -> list[tuple[int, list[bytes]]]:
        """Each user's (history version, history), each pair read atomically."""
        pipe = self.redis.pipeline(transaction=False)
        for u in users:
            self._read(keys=[keys.history_version(u), keys.history(u)], client=pipe)
        return [(int(version), list(history)) for version, history in pipe.execute()]

    def write_states(self, users: Sequence[str], values: Sequence[tuple[int, bytes | None]], head: bytes) -> int:
        """Write (history version, packed state or None) per user unless a newer state is there; returns writes."""
        pipe = self.redis.pipeline(transaction=False)
        for u, (version, value) in zip(users, values, strict=True):
            self._write(keys=[keys.state(u), keys.state_version(u)], args=[value or b"", version, head], client=pipe)
        return sum(int(r) for r in pipe.execute())

    def recompute(self, users: Sequence[str], tables: FeatureTables) -> int:
        """Recompute the users' states from their histories for ``tables``' bundle; returns states written."""
        if not users:
            return 0
        read = self.read_histories(users)
        values = [(version, tables.pack(u, history)) for u, (version, history) in zip(users, read, strict=True)]
        return self.write_states(users, values, tables.head)

    def close(self) -> None:
        if self.sweep is not None:
            self.sweep.cancel()
            self.sweep.wait(10.0)
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
        last_check = -BUNDLE_CHECK_S
        while sub is not None and not stop.is_set():
            if loop.time() - last_check > BUNDLE_CHECK_S:
                # Also when no event comes: the states are rewritten for a new bundle either way.
                first = last_check < 0
                last_check = loop.time()
                try:
                    await asyncio.to_thread(updater.sweep_if_needed if first else updater.refresh_bundle)
                except redis.RedisError as e:
                    log.warning("cannot check the last sweep (%s: %s); retrying", type(e).__name__, e)
                    last_check = -BUNDLE_CHECK_S
            try:
                msgs = await sub.fetch(batch=s.updater_batch, timeout=FETCH_WAIT_S)
            except nats.errors.TimeoutError:
                continue
            except Exception as e:
                log.warning("fetch failed (%s: %s); retrying", type(e).__name__, e)
                await asyncio.sleep(RECONNECT_WAIT_S)
                continue
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
