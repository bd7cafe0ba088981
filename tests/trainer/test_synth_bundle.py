"""Catalog-scale synthetic data and its bundle: skew, batch features, a bundle the node accepts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from node.bundle import LoadedBundle
from trainer import synth_bundle
from trainer.batch_users import batch_user_tables
from trainer.features import user_features
from trainer.rows import ItemTables, user_slices
from trainer.student import StudentConfig
from trainer.synth_bundle import SynthBundleConfig, build_synth_bundle
from trainer.synth_large import LargeSynth, LargeSynthConfig, generate
from trainer.teacher import TeacherConfig

SMALL = LargeSynthConfig(items=3000, users=800, clusters=24, seed=3)


@pytest.fixture(scope="module")
def synth() -> LargeSynth:
    return generate(SMALL)


def test_popularity_is_skewed_and_histories_are_ordered(synth: LargeSynth) -> None:
    data = synth.interactions
    counts = np.sort(np.bincount(data.item, minlength=SMALL.items))[::-1]
    top_share = counts[: SMALL.items // 100].sum() / counts.sum()
    assert top_share > 0.1  # the top 1% of items get far more than 1% of interactions
    assert np.all(np.diff(data.user) >= 0)
    same_user = data.user[1:] == data.user[:-1]
    assert np.all(np.diff(data.timestamp)[same_user] > 0)
    assert np.bincount(data.user).min() >= SMALL.min_interactions
    assert np.allclose(np.linalg.norm(synth.item_emb, axis=1), 1.0, atol=1e-5)


def test_batch_user_tables_match_user_features(synth: LargeSynth) -> None:
    data = synth.interactions
    tables = batch_user_tables(data, synth.item_emb, synth.item_genre)
    slices = user_slices(data)
    assert len(tables["user_ids"]) == len(slices)
    for u in sorted(slices)[:: len(slices) // 25]:
        sl = slices[u]
        one = user_features(
            data.item[sl], data.value[sl], data.positive[sl], data.timestamp[sl], synth.item_emb, synth.item_genre
        )
        k = sorted(slices).index(u)
        assert tables["user_ids"][k] == data.user_ids[u]
        np.testing.assert_allclose(tables["user_dense"][k], one.dense, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(tables["user_emb"][k], one.embedding, rtol=1e-5, atol=1e-6)
        assert tables["user_last_ts"][k] == one.last_ts
        seen = tables["user_seen_items"][tables["user_seen_indptr"][k] : tables["user_seen_indptr"][k + 1]]
        assert np.array_equal(seen, data.item[sl])


def test_bundle_is_served_and_records_the_sample_and_recall(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = replace(
        SynthBundleConfig(data=SMALL),
        ranker_users=300,
        pool_size=100,
        recall_queries=50,
        expansions=(16, 64),
        teacher=TeacherConfig(num_trees=40),
        student=StudentConfig(epochs=5, min_steps=50, groups_per_batch=16),
        # This test is about the bundle, not the student's quality: any student passes.
        student_gate=1.0,
    )
    computed: list[ItemTables] = []  # the item arrays the trainer computed, in memory: the serving tables last
    real = synth_bundle._item_tables

    def spy(*args: Any) -> tuple[ItemTables, dict[str, np.ndarray], float]:
        out = real(*args)
        computed.append(out[0])
        return out

    monkeypatch.setattr(synth_bundle, "_item_tables", spy)
    built = build_synth_bundle(tmp_path, config)
    m = built.manifest
    assert m["counts"] == {"items": 3000, "users": 800}
    assert m["training"]["sampled"]["ranker_users"] == 300
    assert m["training"]["sampled"]["of_users"] == 800
    idx = m["metrics"]["index"]
    assert idx["queries"] == 50 and [e["expansion_search"] for e in idx["measured"]] == [16, 64]
    assert m["index"]["expansion_search"] == idx["expansion_search"]
    assert 0.0 < idx["recall@100"] <= 1.0
    assert m["gates"]["student"]["passed"] is True
    # The node verifies every file and reproduces the golden scores from the batch features.
    bundle = LoadedBundle.load(tmp_path)
    bundle.warm_up()
    assert bundle.n_items == 3000 and len(bundle.user_ids) == 800
    # Format 3: the item arrays only in item_rows.npy, and the node's views of it are the trainer's arrays.
    assert not {p.name for p in built.bundle_dir.iterdir()} & {"item_emb.npy", "item_dense.npy", "item_genre.npy"}
    trainer = computed[-1]
    np.testing.assert_array_equal(bundle.item_emb, trainer.emb)
    np.testing.assert_array_equal(bundle.item_dense, trainer.dense)
    np.testing.assert_array_equal(bundle.item_genre, trainer.genre)
    tools = ItemTables.open(built.bundle_dir, m)  # what evaluation, the feature updater and the gates read
    for got, want in zip(
        (tools.emb, tools.dense, tools.genre, tools.first_ts, tools.primary_genre),
        (trainer.emb, trainer.dense, trainer.genre, trainer.first_ts, trainer.primary_genre),
        strict=True,
    ):
        np.testing.assert_array_equal(got, want)
    assert bundle.item_index[str(bundle.item_ids[1234])] == 1234 and bundle.user_index[str(bundle.user_ids[77])] == 77


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--items", "10"], "--items must be at least 1000, got 10"),
        (["--users", "500", "--ranker-users", "600"], "--ranker-users must not exceed --users"),
        (["--target-recall", "1.5"], "--target-recall must be in (0, 1], got 1.5"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from node.cli import main

    assert main(["synth", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("edgerank: error: ") and message in err
    assert not any(tmp_path.iterdir())
