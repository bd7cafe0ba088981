"""Feature parity: the matrix the node scores equals the one the trainer builds offline."""

from __future__ import annotations

import numpy as np
import pytest

from hotpath import reference
from node.bundle import LoadedBundle
from node.bundle_holder import BundleHolder
from node.pipeline import RankingPipeline
from node.settings import Settings
from node.types import RankQuery, ServedBy
from tests.e2e.conftest import TrainedBundle
from trainer.data import Interactions, load_movielens
from trainer.features import context_vector
from trainer.rows import ItemTables, history_features, user_slices
from trainer.split import protocol_split

# A fixed "now": after the bundle's data, away from any day or hour boundary.
NOW = 1_700_003_723.25


@pytest.fixture(scope="module")
def train_part() -> Interactions:
    return protocol_split(load_movielens().interactions).train


@pytest.fixture(scope="module")
def bundle(movielens_bundle: TrainedBundle) -> LoadedBundle:
    return LoadedBundle.load(movielens_bundle.root)


@pytest.fixture(scope="module")
def pipeline(movielens_bundle: TrainedBundle, bundle: LoadedBundle) -> RankingPipeline:
    settings = Settings.load({"bundle_dir": movielens_bundle.root, "port": 0}, env={})
    return RankingPipeline(settings, BundleHolder(bundle))


def item_tables(movielens_bundle: TrainedBundle) -> ItemTables:
    def npy(name: str) -> np.ndarray:
        return np.load(movielens_bundle.bundle_dir / name, allow_pickle=False)

    return ItemTables(
        npy("item_dense.npy"),
        npy("item_emb.npy"),
        npy("item_genre.npy"),
        npy("item_first_ts.npy"),
        npy("item_primary_genre.npy"),
    )


def warm_users(train: Interactions, count: int) -> list[str]:
    ids = sorted({train.user_ids[u] for u in np.unique(train.user)}, key=int)
    return ids[:: max(1, len(ids) // count)][:count]


def test_offline_and_online_features_are_equal(
    movielens_bundle: TrainedBundle, bundle: LoadedBundle, pipeline: RankingPipeline, train_part: Interactions
) -> None:
    items = item_tables(movielens_bundle)
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
        assert candidates.dtype == np.uint32 and len(candidates) == 500
        assert snap.matrix.shape == (500, bundle.n_features) and snap.matrix.dtype == np.float32

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

        # and the scores the node served are the ranker's on that matrix
        scores = bundle.score(offline)
        served = {bundle.item_index[i.item_id]: i.score for i in result.items}
        row_of = {int(c): k for k, c in enumerate(candidates)}
        for item, score in served.items():
            assert score == pytest.approx(float(scores[row_of[item]]), abs=1e-6)
