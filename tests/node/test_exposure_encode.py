"""What an exposure carries: the shown items' feature rows, in rank order."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from node.bundle import LoadedBundle
from node.bundle_holder import BundleHolder
from node.exposures import encode
from node.pipeline import RankingPipeline
from node.settings import Settings
from node.types import FeatureSnapshot, RankQuery, ServedBy


@pytest.fixture(scope="module")
def bundle(bundle_root: Path) -> LoadedBundle:
    return LoadedBundle.load(bundle_root)


def rows(doc: dict[str, object], n_features: int) -> np.ndarray:
    raw = base64.b64decode(str(doc["features"]))
    return np.frombuffer(raw, dtype="<f4").reshape(-1, n_features)


def test_the_snapshot_keeps_the_shown_rows_and_the_exposure_carries_them(bundle: LoadedBundle) -> None:
    pipeline = RankingPipeline(Settings.load(env={}), BundleHolder(bundle))
    query = RankQuery(user_id="u005", surface="home", num_results=10, pool_size=200, request_id="r")
    result = pipeline.rank(query)
    assert result.served_by == ServedBy.FULL and result.features is not None
    snap = result.features
    assert bundle.item_ids[snap.candidates].tolist() == [i.item_id for i in result.items]
    doc = encode(query, result, bundle, "local")
    np.testing.assert_array_equal(rows(doc, bundle.n_features), snap.matrix)
    # A snapshot whose rows are in another order (or hold more items) is mapped by item.
    order = np.arange(len(snap.candidates))[::-1]
    shuffled = FeatureSnapshot(snap.user, snap.candidates[order], snap.matrix[order], snap.now_ts)
    again = encode(query, dataclasses.replace(result, features=shuffled), bundle, "local")
    np.testing.assert_array_equal(rows(again, bundle.n_features), snap.matrix)
