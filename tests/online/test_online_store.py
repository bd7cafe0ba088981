"""The Redis feature store and the updater's writes, against a real Redis."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import redis

from node import feature_keys as keys
from node import user_value
from node.bundle import LoadedBundle
from node.feature_store import EmbeddedFeatureStore, StaleFeatures
from node.gen.edgerank.v1 import events_pb2
from node.online_store import FeatureCache, RedisFeatureStore, RedisLink
from node.settings import Settings
from node.updater import FeatureUpdater
from tests.online.events_util import event
from tests.servers import RedisServer
from trainer.features import user_features


@pytest.fixture(scope="module")
def bundle(online_bundle_root: Path) -> LoadedBundle:
    return LoadedBundle.load(online_bundle_root)


def store(bundle: LoadedBundle, settings: Settings) -> RedisFeatureStore:
    link = RedisLink(settings.redis_url, settings.redis_timeout_ms, settings.redis_retry_ms)
    return RedisFeatureStore(bundle, link, FeatureCache(100, 60.0))


def test_user_value_round_trip_and_header_check() -> None:
    head = user_value.header("abc", "space-1")
    dense, emb, seen = np.arange(10, dtype=np.float32), np.ones(4, np.float32), np.array([3, 1], np.uint32)
    recent = user_value.Recent(np.array([11.0, 12.5]), np.array([1, 3], np.uint32), np.array([False, True]))
    state, back = user_value.read(head, user_value.pack(head, dense, emb, 12.5, seen, recent))
    assert np.array_equal(state.dense, dense) and np.array_equal(state.embedding, emb)
    assert state.last_ts == 12.5 and state.seen.tolist() == [3, 1] and np.array_equal(state.genre, dense[-2:])
    assert back.ts.tolist() == [11.0, 12.5] and back.items.tolist() == [1, 3] and back.positive.tolist() == [0, 1]
    assert user_value.unpack(head, user_value.pack(head, dense, emb, 12.5, seen)).seen.tolist() == [3, 1]
    with pytest.raises(ValueError, match="6 \\+ 2G"):
        user_value.unpack(head, user_value.pack(head, dense[:9], emb, 12.5, seen))
    with pytest.raises(user_value.MismatchedValue):
        user_value.unpack(user_value.header("abc", "space-2"), user_value.pack(head, dense, emb, 1.0, seen))


def test_online_state_is_user_features_of_the_history(bundle: LoadedBundle, settings: Settings) -> None:
    """One definition: the state Rank reads equals user_features over the applied events."""
    updater = FeatureUpdater(settings)
    user = f"{settings.region}-u1"
    items = ["i5", "i17", "i99", "i5"]
    kinds = [
        events_pb2.EVENT_TYPE_CLICK,
        events_pb2.EVENT_TYPE_SKIP,
        events_pb2.EVENT_TYPE_RATING,
        events_pb2.EVENT_TYPE_PLAY,
    ]
    values = [0.0, 0.0, 2.5, 0.0]
    base = 1_700_000_000_000
    evs = [
        event(f"{user}-e{k}", user, it, kind, value=v, timestamp_ms=base + 1000 * k)
        for k, (it, kind, v) in enumerate(zip(items, kinds, values, strict=True))
    ]
    assert updater.apply(evs) == 4
    state = store(bundle, settings).get(user)
    assert state is not None
    idx = np.array([bundle.item_index[i] for i in items])
    expected = user_features(
        idx,
        np.array([4.0, 1.0, 2.5, 4.0]),
        np.array([True, False, False, True]),
        (base + 1000 * np.arange(4)) / 1000.0,
        bundle.item_emb,
        bundle.item_genre,
    )
    np.testing.assert_array_equal(state.dense, expected.dense)
    np.testing.assert_array_equal(state.embedding, expected.embedding)
    assert state.last_ts == expected.last_ts
    assert state.seen.tolist() == idx.astype(np.uint32).tolist()
    updater.close()


def test_applying_an_event_twice_counts_it_once(settings: Settings, redis_client: redis.Redis) -> None:
    updater = FeatureUpdater(settings)
    user = f"{settings.region}-u2"
    evs = [event(f"{user}-a", user, "i1"), event(f"{user}-b", user, "i2", events_pb2.EVENT_TYPE_SKIP)]
    assert updater.apply(evs) == 2
    assert updater.apply(evs) == 0
    assert updater.apply(evs[:1]) == 0
    assert redis_client.llen(keys.history(user)) == 2
    counts = redis_client.hgetall(keys.counts(user))
    assert counts == {b"CLICK": b"1", b"SKIP": b"1", b"NEGATIVE": b"1"}
    updater.close()


def test_unknown_online_user_gets_batch_features(bundle: LoadedBundle, settings: Settings) -> None:
    online = store(bundle, settings).get("u007")
    batch = EmbeddedFeatureStore(bundle).get("u007")
    assert online is not None and batch is not None
    assert np.array_equal(online.embedding, batch.embedding)
    assert store(bundle, settings).get(f"{settings.region}-nobody") is None


def test_value_of_another_embedding_space_is_never_used(
    bundle: LoadedBundle, settings: Settings, redis_client: redis.Redis
) -> None:
    user = f"{settings.region}-u3"
    head = user_value.header(bundle.manifest["feature_schema_hash"], "another-space")
    d = len(bundle.manifest["feature_names"])
    redis_client.set(
        keys.state(user),
        user_value.pack(head, np.zeros(d), np.zeros(bundle.embedding_dim), 1.0, np.zeros(0, dtype=np.int64)),
    )
    with pytest.raises(StaleFeatures) as raised:
        store(bundle, settings).get(user)
    assert raised.value.state is None


def test_session_negatives_are_not_served_again(bundle: LoadedBundle, settings: Settings) -> None:
    updater = FeatureUpdater(settings)
    user = f"{settings.region}-u4"
    updater.apply(
        [
            event(f"{user}-a", user, "i10", session_id="s1", timestamp_ms=1_700_000_000_000),
            event(
                f"{user}-b", user, "i11", events_pb2.EVENT_TYPE_SKIP, session_id="s1", timestamp_ms=1_700_000_001_000
            ),
            event(
                f"{user}-c",
                user,
                "i12",
                events_pb2.EVENT_TYPE_DWELL,
                value=2.0,
                session_id="s1",
                timestamp_ms=1_700_000_002_000,
            ),
        ]
    )
    s = store(bundle, settings)
    with_session = s.get(user, "s1")
    assert with_session is not None
    seen = set(with_session.seen.tolist())
    assert {bundle.item_index["i11"], bundle.item_index["i12"]} <= seen
    assert with_session.seen[-1] == bundle.item_index["i12"]  # the latest interaction seeds continuation
    updater.close()


def test_a_paused_redis_answers_stale_within_the_budget(
    bundle: LoadedBundle, settings: Settings, redis_server: RedisServer
) -> None:
    s = store(bundle, settings)
    assert s.get("u001") is not None  # cached
    redis_server.pause()
    try:
        t0 = time.perf_counter()
        with pytest.raises(StaleFeatures) as raised:
            s.get("u001")
        elapsed_ms = (time.perf_counter() - t0) * 1e3
        assert raised.value.state is not None  # from the local cache
        assert elapsed_ms < settings.redis_timeout_ms * 3
        t0 = time.perf_counter()
        with pytest.raises(StaleFeatures):
            s.get("u001")  # held off: no wait at all
        assert (time.perf_counter() - t0) * 1e3 < 2.0
    finally:
        redis_server.resume()
