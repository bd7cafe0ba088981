"""Feature parity: the matrix the node scores equals the one the trainer builds offline.

With the batch features alone, and with online features (real Redis): a warm
user's first online event is added to their batch history, and the session
block of a request is the trainer's, from interactions before the request.
"""

from __future__ import annotations

import numpy as np
import pytest
import redis

from hotpath import reference
from node.bundle import LoadedBundle
from node.bundle_holder import BundleHolder
from node.gen.edgerank.v1 import events_pb2
from node.online_store import redis_store_factory
from node.pipeline import RankingPipeline
from node.settings import Settings
from node.types import RankQuery, ServedBy
from node.updater import FeatureUpdater
from tests.e2e.conftest import TrainedBundle
from tests.servers import RedisServer
from trainer import features as F
from trainer.artifacts import primary_genre
from trainer.data import Dataset, Interactions, load_movielens
from trainer.embeddings import embedding_space_id, genre_matrix, genre_vocabulary
from trainer.features import context_vector, item_features, user_features
from trainer.rows import ItemTables, history_features, user_slices
from trainer.split import protocol_split

# A fixed "now": after the bundle's data, away from any day or hour boundary.
NOW = 1_700_003_723.25


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return load_movielens()


@pytest.fixture(scope="module")
def train_part(dataset: Dataset) -> Interactions:
    return protocol_split(dataset.interactions).train


@pytest.fixture(scope="module")
def bundle(movielens_bundle: TrainedBundle) -> LoadedBundle:
    return LoadedBundle.load(movielens_bundle.root)


@pytest.fixture(scope="module")
def pipeline(movielens_bundle: TrainedBundle, bundle: LoadedBundle) -> RankingPipeline:
    settings = Settings.load({"bundle_dir": movielens_bundle.root, "port": 0}, env={})
    return RankingPipeline(settings, BundleHolder(bundle))


@pytest.fixture(scope="module")
def items(
    movielens_bundle: TrainedBundle, bundle: LoadedBundle, dataset: Dataset, train_part: Interactions
) -> ItemTables:
    """The item arrays as the trainer computes them in memory (the bundle carries them only in item_rows.npy)."""
    catalog, manifest = dataset.catalog, movielens_bundle.manifest
    genre = genre_matrix(catalog, genre_vocabulary(catalog))
    as_of = float(train_part.timestamp.max())
    assert as_of == manifest["training"]["as_of"]
    t = train_part
    dense, first_ts = item_features(len(catalog), t.item, t.value, t.positive, t.timestamp, genre, catalog.years, as_of)
    # The embeddings are fitted (an SVD): the trainer's are those whose bytes the manifest's space id hashes.
    emb = np.array(bundle.item_emb)
    assert embedding_space_id(emb) == manifest["embedding_space_id"]
    return ItemTables(dense, emb, genre, first_ts, primary_genre(genre))


def test_the_node_s_item_arrays_are_the_trainer_s(
    movielens_bundle: TrainedBundle, bundle: LoadedBundle, items: ItemTables
) -> None:
    assert not {p.name for p in movielens_bundle.bundle_dir.iterdir()} & {
        "item_emb.npy",
        "item_dense.npy",
        "item_genre.npy",
    }
    np.testing.assert_array_equal(bundle.item_dense, items.dense)
    np.testing.assert_array_equal(bundle.item_genre, items.genre)
    assert bundle.item_emb.base is not None and not bundle.item_emb.flags.owndata  # a view, not a copy


def warm_users(train: Interactions, count: int) -> list[str]:
    ids = sorted({train.user_ids[u] for u in np.unique(train.user)}, key=int)
    return ids[:: max(1, len(ids) // count)][:count]


def test_offline_and_online_features_are_equal(
    movielens_bundle: TrainedBundle,
    bundle: LoadedBundle,
    pipeline: RankingPipeline,
    train_part: Interactions,
    items: ItemTables,
) -> None:
    assert float(movielens_bundle.manifest["training"]["as_of"]) < NOW
    offline_assembler = items.assembler()
    slices = user_slices(train_part)
    by_id = {train_part.user_ids[u]: sl for u, sl in slices.items()}
    users = warm_users(train_part, 5)
    assert len(users) == 5
    for user in users:
        result = pipeline.rank(RankQuery(user, "home", num_results=10, pool_size=500, now_ts=NOW))
        assert result.served_by == ServedBy.FULL
        snap = result.features
        assert snap is not None and snap.now_ts == NOW
        candidates = snap.candidates
        # the snapshot keeps the rows of the items shown, in the order shown
        assert candidates.dtype == np.uint32 and len(candidates) == len(result.items) == 10
        assert candidates.tolist() == [bundle.item_index[i.item_id] for i in result.items]
        assert snap.matrix.shape == (10, bundle.n_features) and snap.matrix.dtype == np.float32

        # the trainer's way: the user's training history, the bundle's item arrays
        sl = by_id[user]
        uf = history_features(train_part, sl, items)
        np.testing.assert_array_equal(uf.dense, snap.user.dense)
        np.testing.assert_array_equal(uf.embedding, snap.user.embedding)
        np.testing.assert_array_equal(uf.genre, snap.user.genre)
        assert uf.last_ts == snap.user.last_ts
        np.testing.assert_array_equal(train_part.item[sl].astype(np.uint32), snap.user.seen)
        assert not np.isin(candidates, snap.user.seen).any()

        offline = offline_assembler.assemble(
            uf.dense, uf.embedding, uf.genre, uf.last_ts, NOW, context_vector(NOW), candidates
        )
        np.testing.assert_array_equal(offline, snap.matrix)

        ref = reference.assemble(
            items.dense,
            items.emb,
            items.genre,
            items.first_ts,
            uf.dense,
            uf.embedding,
            uf.genre,
            uf.last_ts,
            NOW,
            context_vector(NOW),
            candidates,
        )
        np.testing.assert_allclose(ref, snap.matrix, rtol=1e-5, atol=1e-5)

        # and the scores the node served are the ranker's over the whole pool (the int8 ranker quantizes its
        # activations per call, so the pool is scored as the node scored it: in one call)
        pool = bundle.candidates.pool(uf.embedding, int(snap.user.seen[-1]), snap.user.seen, 500, pipeline.quotas)
        assert len(pool.items) == 500 and np.isin(candidates, pool.items).all()
        full = offline_assembler.assemble(
            uf.dense, uf.embedding, uf.genre, uf.last_ts, NOW, context_vector(NOW), pool.items
        )
        scores = bundle.score(full)
        row_of = {int(c): k for k, c in enumerate(pool.items)}
        for item in result.items:
            assert item.score == pytest.approx(float(scores[row_of[bundle.item_index[item.item_id]]]), abs=1e-6)


def test_a_warm_users_first_online_event_adds_to_their_batch_history(
    movielens_bundle: TrainedBundle,
    bundle: LoadedBundle,
    train_part: Interactions,
    redis_server: RedisServer,
    items: ItemTables,
) -> None:
    """Online features = trainer.features on (batch history + the events), session block included."""
    url = redis_server.url.rsplit("/", 1)[0] + "/4"  # a database of its own: no other test's users
    settings = Settings.load({"bundle_dir": movielens_bundle.root, "port": 0, "redis_url": url}, env={})
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    by_id = {train_part.user_ids[u]: sl for u, sl in user_slices(train_part).items()}
    # warm users whose whole batch history fits in the online history
    users = [u for u in warm_users(train_part, 40) if 20 <= by_id[u].stop - by_id[u].start < settings.history_max - 2]
    assert len(users) >= 3
    factory, close = redis_store_factory(settings)
    pipeline = RankingPipeline(settings, BundleHolder(bundle), factory)
    updater = FeatureUpdater(settings)
    try:
        for k, user in enumerate(users[:3]):
            sl = by_id[user]
            seen = set(train_part.item[sl].tolist())
            new = [i for i in bundle.popularity["global"].tolist() if i not in seen][:2]
            click_ts, rating_ts = NOW - 1500.0, NOW - 60.0
            click, rating = (str(bundle.item_ids[i]) for i in new)
            updater.apply(
                [
                    _event(f"parity-{k}-click", user, click, events_pb2.EVENT_TYPE_CLICK, 0.0, click_ts),
                    _event(f"parity-{k}-rate", user, rating, events_pb2.EVENT_TYPE_RATING, 2.5, rating_ts),
                ]
            )
            # the trainer's way: the batch history, then the events, as of NOW
            uf = user_features(
                np.r_[train_part.item[sl], new],
                np.r_[train_part.value[sl], 4.0, 2.5],
                np.r_[train_part.positive[sl], True, False],
                np.r_[train_part.timestamp[sl], click_ts, rating_ts],
                items.emb,
                items.genre,
                now=NOW,
            )
            session = uf.dense[F.session_slice(len(bundle.genres))]
            assert session[0] == np.float32(np.log1p(2)) and session[1] == np.float32(0.5)  # both are in the window

            result = pipeline.rank(RankQuery(user, "home", num_results=10, pool_size=500, now_ts=NOW))
            assert result.served_by == ServedBy.FULL
            snap = result.features
            assert snap is not None
            np.testing.assert_array_equal(uf.dense, snap.user.dense)
            np.testing.assert_array_equal(uf.embedding, snap.user.embedding)
            np.testing.assert_array_equal(uf.genre, snap.user.genre)
            assert uf.last_ts == snap.user.last_ts == rating_ts
            assert set(new) <= set(snap.user.seen.tolist()) and seen <= set(snap.user.seen.tolist())
            offline = items.assembler().assemble(
                uf.dense, uf.embedding, uf.genre, uf.last_ts, NOW, context_vector(NOW), snap.candidates
            )
            np.testing.assert_array_equal(offline, snap.matrix)
            # an hour later the session is over: the block is empty again, the rest unchanged
            later = pipeline.rank(RankQuery(user, "home", num_results=10, pool_size=500, now_ts=NOW + 3600.0))
            assert later.features is not None
            np.testing.assert_array_equal(later.features.user.dense, F.with_session(uf.dense, np.zeros_like(session)))
    finally:
        updater.close()
        close()


def _event(
    event_id: str, user: str, item: str, kind: events_pb2.EventType, value: float, ts: float
) -> events_pb2.Event:
    return events_pb2.Event(
        event_id=event_id, user_id=user, item_id=item, type=kind, value=value, timestamp_ms=int(ts * 1000)
    )
