"""Seeding online histories from the bundle, and rewriting every online state for a new bundle (real Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis

from node import feature_keys as keys
from node.bundle import LoadedBundle
from node.bundle_holder import BundleHolder
from node.feature_store import StaleFeatures
from node.gen.edgerank.v1 import events_pb2
from node.online_store import FeatureCache, RedisFeatureStore, RedisLink
from node.pipeline import RankingPipeline
from node.settings import Settings
from node.types import RankQuery, ServedBy
from node.updater import FeatureUpdater
from tests.node.synthetic_bundle import NOW, make_bundle
from tests.online.events_util import event
from trainer import features as F

EVENT_TS = NOW - 120.0  # in the session window of a request at NOW


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A bundle root of its own, with bundle A (seed arrays included) as LATEST."""
    root = tmp_path / "bundles"
    make_bundle(root, prefix="i", seed=3, seed_history=True)
    return root


@pytest.fixture
def db(settings: Settings) -> Iterator[Settings]:
    """The suite's settings on a Redis database of this module's own, empty: sweeps see only these users."""
    own = settings.replace(redis_url=settings.redis_url.rsplit("/", 1)[0] + "/3")
    with redis.Redis.from_url(own.redis_url) as client:
        client.flushdb()
    yield own


@pytest.fixture
def client(db: Settings) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(db.redis_url) as client:
        yield client


def settings_for(settings: Settings, root: Path) -> Settings:
    return settings.replace(bundle_dir=root)


def store(bundle: LoadedBundle, settings: Settings) -> RedisFeatureStore:
    link = RedisLink(settings.redis_url, settings.redis_timeout_ms, settings.redis_retry_ms)
    return RedisFeatureStore(bundle, link, FeatureCache(100, 60.0))


def batch_rows(bundle: LoadedBundle, user: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(items, values, positive, ts) of the user's batch interactions in ``bundle``."""
    row = bundle.user_index[user]
    at = slice(int(bundle.user_seen_indptr[row]), int(bundle.user_seen_indptr[row + 1]))

    def npy(name: str) -> np.ndarray:
        return np.load(bundle.path / name)[at]

    return (
        bundle.user_seen_items[at].astype(np.int64),
        npy("user_seen_values.npy"),
        npy("user_seen_positive.npy"),
        npy("user_seen_ts.npy"),
    )


def expected(bundle: LoadedBundle, rows: tuple[np.ndarray, ...], now: float | None) -> F.UserFeatures:
    items, values, positive, ts = rows
    return F.user_features(items, values, positive, ts, bundle.item_emb, bundle.item_genre, now=now)


def with_click(bundle: LoadedBundle, rows: tuple[np.ndarray, ...], item: str, ts: float) -> tuple[np.ndarray, ...]:
    items, values, positive, stamps = rows
    return (
        np.r_[items, bundle.item_index[item]],
        np.r_[values, 4.0],
        np.r_[positive, True],
        np.r_[stamps, ts],
    )


def test_the_first_event_seeds_the_batch_history_once(db: Settings, root: Path, client: redis.Redis) -> None:
    s = settings_for(db, root)
    bundle = LoadedBundle.load(root)
    user = "u007"
    rows = batch_rows(bundle, user)
    n_batch = len(rows[0])
    updater = FeatureUpdater(s)
    try:
        click = event(f"{s.region}-c1", user, "i1999", timestamp_ms=int(EVENT_TS * 1000))
        assert updater.apply([click]) == 1
        assert updater.seeded == 1
        assert client.llen(keys.history(user)) == n_batch + 1

        # the online features are those of the batch history plus the event, as the trainer computes them
        state = store(bundle, s).get(user, now=NOW)
        assert state is not None
        want = expected(bundle, with_click(bundle, rows, "i1999", EVENT_TS), NOW)
        np.testing.assert_array_equal(state.dense, want.dense)
        np.testing.assert_array_equal(state.embedding, want.embedding)
        assert state.last_ts == want.last_ts == EVENT_TS
        assert state.dense[F.session_slice(len(bundle.genres))][0] == np.float32(np.log1p(1))

        # a redelivery (a crash before the ack) seeds nothing twice; the next event seeds nothing either
        assert updater.apply([click]) == 0
        assert updater.apply([event(f"{s.region}-c2", user, "i1998", timestamp_ms=int(EVENT_TS * 1000) + 1)]) == 1
        assert updater.seeded == 1
        assert client.llen(keys.history(user)) == n_batch + 2
        # another updater (after a restart) does not seed again either
        other = FeatureUpdater(s)
        assert other.apply([event(f"{s.region}-c3", user, "i1997", timestamp_ms=int(EVENT_TS * 1000) + 2)]) == 1
        assert other.seeded == 0
        other.close()
        assert client.llen(keys.history(user)) == n_batch + 3
    finally:
        updater.close()


def test_a_bundle_without_seed_arrays_seeds_nothing(db: Settings, client: redis.Redis) -> None:
    settings = db
    updater = FeatureUpdater(settings)  # the suite's bundle has no user_seen_ts/values/positive
    user = "u008"
    try:
        assert not updater.tables.can_seed
        assert updater.apply([event(f"{settings.region}-x", user, "i5")]) == 1
        assert client.llen(keys.history(user)) == 1 and not client.exists(keys.seeded(user))
    finally:
        updater.close()


def test_a_state_of_a_newer_history_is_never_overwritten(db: Settings, root: Path) -> None:
    s = settings_for(db, root)
    bundle = LoadedBundle.load(root)
    user = f"{s.region}-w1"
    updater = FeatureUpdater(s)
    try:
        updater.apply([event(f"{user}-a", user, "i10", timestamp_ms=int(EVENT_TS * 1000))])
        # a sweep reads the history ...
        [(version, history)] = updater.read_histories([user])
        old = updater.tables.pack(user, history)
        # ... an event lands and its state is written ...
        updater.apply([event(f"{user}-b", user, "i11", timestamp_ms=int(EVENT_TS * 1000) + 1000)])
        # ... and the sweep's older state loses
        assert updater.write_states([user], [(version, old)], updater.tables.head) == 0
        state = store(bundle, s).get(user)
        assert state is not None and state.seen.tolist() == [bundle.item_index["i10"], bundle.item_index["i11"]]
        # the same history for another bundle's header is rewritten; for the same header it is not
        [(now_version, history)] = updater.read_histories([user])
        assert now_version == version + 1
        value = updater.tables.pack(user, history)
        assert updater.write_states([user], [(now_version, value)], updater.tables.head) == 0
        assert updater.write_states([user], [(now_version, value)], b"ERU2-another-bundle") == 1
    finally:
        updater.close()


def test_online_states_are_rewritten_for_a_new_bundle_without_new_events(
    db: Settings, root: Path, client: redis.Redis
) -> None:
    s = settings_for(db, root)
    a = LoadedBundle.load(root)
    online_user, batch_user = f"{s.region}-s1", "u011"
    updater = FeatureUpdater(s)
    try:
        ms = int(EVENT_TS * 1000)
        skip = events_pb2.EVENT_TYPE_SKIP
        updater.apply(
            [
                event(f"{s.region}-s1-a", online_user, "i20", timestamp_ms=ms),
                event(f"{s.region}-s1-b", online_user, "i21", skip, timestamp_ms=ms + 1),
                event(f"{s.region}-s1-c", batch_user, "i22", timestamp_ms=ms),
            ]
        )
        assert store(a, s).get(online_user, now=NOW) is not None

        # bundle B: another feature schema (six genres) and embedding space, same item ids
        make_bundle(root, prefix="i", seed=4, n_genres=6, seed_history=True)
        b = LoadedBundle.load(root)
        assert b.manifest["feature_schema_hash"] != a.manifest["feature_schema_hash"]
        with pytest.raises(StaleFeatures):
            store(b, s).get(online_user, now=NOW)  # A's value is never used with B

        updater.refresh_bundle()
        assert updater.sweep is not None and updater.sweep.wait(30.0)
        assert updater.sweep.users >= 2 and updater.sweep.written >= 2

        rows = (np.array([b.item_index["i20"], b.item_index["i21"]]), np.array([4.0, 1.0]), np.array([True, False]))
        want = F.user_features(*rows, np.array([EVENT_TS, EVENT_TS + 0.001]), b.item_emb, b.item_genre, now=NOW)
        b_rows = batch_rows(a, batch_user)  # seeded from A: the history of record; B's items have the same ids
        want_batch = expected(b, with_click(b, b_rows, "i22", EVENT_TS), NOW)

        settings_b = s.replace(bundle_dir=b.path)
        pipeline = RankingPipeline(settings_b, BundleHolder(b), lambda bundle: store(bundle, settings_b))
        for user, features in ((online_user, want), (batch_user, want_batch)):
            result = pipeline.rank(RankQuery(user, "home", num_results=10, pool_size=100, now_ts=NOW))
            assert result.served_by == ServedBy.FULL
            assert result.features is not None
            np.testing.assert_array_equal(result.features.user.dense, features.dense)
            np.testing.assert_array_equal(result.features.user.embedding, features.embedding)
        assert client.get(keys.SWEPT) == updater.tables.head
        # an updater that starts on B later does not sweep again
        restarted = FeatureUpdater(s)
        restarted.sweep_if_needed()
        assert restarted.sweep is None
        restarted.close()
    finally:
        updater.close()
