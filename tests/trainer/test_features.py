"""The one feature definition (trainer.features), on hand-made values."""

from __future__ import annotations

import calendar
import math

import numpy as np
import pytest

from trainer import features as F

DAY = 86_400.0
# 2024-01-01 was a Monday.
MONDAY_0600 = float(calendar.timegm((2024, 1, 1, 6, 0, 0)))


def test_context_vector_monday_0600_utc() -> None:
    c = F.context_vector(MONDAY_0600)
    assert c.dtype == np.float32 and c.shape == (4,)
    # hour 6 -> a quarter of the day; Monday -> day 0 of the week
    np.testing.assert_allclose(c, [1.0, 0.0, 0.0, 1.0], atol=1e-6)


@pytest.mark.parametrize(
    ("offset", "hour", "dow"),
    [
        (0.0, 6.0, 0),
        (6 * 3600.0, 12.0, 0),  # Monday noon
        (18 * 3600.0, 0.0, 1),  # Tuesday midnight
        (2 * DAY + 1800.0, 6.5, 2),  # Wednesday 06:30
        (6 * DAY - 6 * 3600.0, 0.0, 6),  # Sunday midnight
        (7 * DAY, 6.0, 0),  # a week later
    ],
)
def test_context_vector_hours_and_days(offset: float, hour: float, dow: int) -> None:
    c = F.context_vector(MONDAY_0600 + offset)
    a, b = 2 * math.pi * hour / 24, 2 * math.pi * dow / 7
    np.testing.assert_allclose(c, [math.sin(a), math.cos(a), math.sin(b), math.cos(b)], atol=1e-6)


def test_context_vector_epoch_is_a_thursday() -> None:
    b = 2 * math.pi * 3 / 7
    np.testing.assert_allclose(F.context_vector(0.0), [0.0, 1.0, math.sin(b), math.cos(b)], atol=1e-6)


# -- user features ---------------------------------------------------------------

ITEM_EMB = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, -4.0]], dtype=np.float32)
ITEM_GENRE = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=np.float32)


def test_user_features_on_a_hand_made_history() -> None:
    t0 = 1_600_000_000.0
    items = np.array([0, 1, 2, 3])
    values = np.array([5.0, 2.0, 4.0, 3.0])
    positive = values >= 4
    ts = np.array([t0, t0 + DAY, t0 + 2 * DAY, t0 + 10 * DAY])
    uf = F.user_features(items, values, positive, ts, ITEM_EMB, ITEM_GENRE, half_life_days=10.0)

    assert uf.dense.dtype == np.float32 and uf.dense.shape == (F.user_dim(3),)
    # scalars: log count, mean value, positive rate, log span in days
    np.testing.assert_allclose(uf.dense[:4], [math.log1p(4), 3.5, 0.5, math.log1p(10.0)], rtol=1e-6)
    # genre affinity over the positives (items 0 and 2): [1,0,0] + [1,1,0] -> [2,1,0] / 3
    np.testing.assert_allclose(uf.genre, [2 / 3, 1 / 3, 0.0], rtol=1e-6)
    assert math.isclose(float(uf.genre.sum()), 1.0, rel_tol=1e-6)
    np.testing.assert_array_equal(uf.dense[-3:], uf.genre)
    np.testing.assert_array_equal(F.user_genre(uf.dense, 3), uf.genre)
    # no request time: the session block is empty
    assert not uf.dense[F.session_slice(3)].any() and F.session_slice(3) == slice(4, 9)
    # embedding: recency-weighted mean of the positives' embeddings, unit norm
    w0, w2 = 0.5 ** (10 / 10), 0.5 ** (8 / 10)
    expect = w0 * ITEM_EMB[0] + w2 * ITEM_EMB[2]
    np.testing.assert_allclose(uf.embedding, expect / np.linalg.norm(expect), rtol=1e-6)
    assert math.isclose(float(np.linalg.norm(uf.embedding)), 1.0, rel_tol=1e-6)
    assert uf.last_ts == t0 + 10 * DAY and uf.known


def test_user_features_without_positives_uses_every_item() -> None:
    items = np.array([1, 3])
    uf = F.user_features(
        items, np.array([1.0, 2.0]), np.array([False, False]), np.array([10.0, 10.0]), ITEM_EMB, ITEM_GENRE
    )
    np.testing.assert_allclose(uf.dense[:4], [math.log1p(2), 1.5, 0.0, 0.0])
    np.testing.assert_allclose(uf.genre, [0.0, 0.5, 0.5])
    expect = ITEM_EMB[1] + ITEM_EMB[3]  # equal weights (same time)
    np.testing.assert_allclose(uf.embedding, expect / np.linalg.norm(expect), rtol=1e-6)
    assert math.isclose(float(np.linalg.norm(uf.embedding)), 1.0, rel_tol=1e-6)
    assert uf.last_ts == 10.0


def test_user_features_of_an_empty_history() -> None:
    empty_i = np.empty(0, np.int64)
    empty_f = np.empty(0, np.float64)
    uf = F.user_features(empty_i, empty_f, np.empty(0, bool), empty_f, ITEM_EMB, ITEM_GENRE)
    assert uf.dense.shape == (F.user_dim(3),) and not uf.dense.any()
    assert uf.embedding.shape == (2,) and not uf.embedding.any()
    assert uf.genre.shape == (3,) and not uf.genre.any()
    assert uf.last_ts == -1.0 and not uf.known
    assert uf.dense.dtype == uf.embedding.dtype == uf.genre.dtype == np.float32


# -- the session block -------------------------------------------------------------

NOW = 1_700_000_000.0


def test_session_block_is_the_last_half_hour_before_now() -> None:
    # items: 0 [1,0,0] long ago; 1 [0,1,0] and 2 [1,1,0] in the window; 3 [0,0,1] at now (not before it)
    items = np.array([0, 1, 2, 3])
    positive = np.array([True, True, False, True])
    ts = np.array([NOW - 1801.0, NOW - 1800.0, NOW - 1.0, NOW])
    block = F.session_block(items, positive, ts, NOW, ITEM_GENRE)
    assert block.dtype == np.float32 and block.shape == (F.session_dim(3),)
    # two interactions, one positive; the genres of the positive one only
    np.testing.assert_allclose(block, [math.log1p(2), 0.5, 0.0, 1.0, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(F.in_session(ts, NOW), [1, 2])


def test_session_block_without_positives_uses_every_item_and_is_empty_without_time() -> None:
    items, positive, ts = np.array([1, 3]), np.array([False, False]), np.array([NOW - 60.0, NOW - 30.0])
    np.testing.assert_allclose(F.session_block(items, positive, ts, NOW, ITEM_GENRE), [math.log1p(2), 0, 0, 0.5, 0.5])
    assert not F.session_block(items, positive, ts, None, ITEM_GENRE).any()
    assert not F.session_block(items, positive, ts, NOW + 3600.0, ITEM_GENRE).any()  # the session is over
    # before the second interaction: only the first one counts
    first = F.session_block(items, positive, ts, NOW - 30.5, ITEM_GENRE)
    np.testing.assert_allclose(first, [math.log1p(1), 0, 0, 1, 0])


def test_session_block_keeps_the_last_interactions_only() -> None:
    n = F.SESSION_MAX + 5
    items = np.r_[np.zeros(5, np.int64), np.ones(F.SESSION_MAX, np.int64)]
    ts = NOW - 100.0 + np.arange(n) * 0.5
    block = F.session_block(items, np.ones(n, bool), ts, NOW, ITEM_GENRE)
    np.testing.assert_allclose(block, [math.log1p(F.SESSION_MAX), 1.0, 0.0, 1.0, 0.0], rtol=1e-6)


def test_user_features_at_a_request_time_fill_the_session_block() -> None:
    items, values = np.array([0, 1, 2]), np.array([5.0, 4.0, 2.0])
    ts = np.array([NOW - 7200.0, NOW - 600.0, NOW - 60.0])
    at_now = F.user_features(items, values, values >= 4, ts, ITEM_EMB, ITEM_GENRE, now=NOW)
    without = F.user_features(items, values, values >= 4, ts, ITEM_EMB, ITEM_GENRE)
    block = F.session_block(items, values >= 4, ts, NOW, ITEM_GENRE)
    np.testing.assert_allclose(block, [math.log1p(2), 0.5, 0.0, 1.0, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(at_now.dense[F.session_slice(3)], block)
    np.testing.assert_array_equal(F.with_session(without.dense, block), at_now.dense)
    # everything else is the same: the session block is the only part that depends on the request time
    rest = np.ones(F.user_dim(3), bool)
    rest[F.session_slice(3)] = False
    np.testing.assert_array_equal(at_now.dense[rest], without.dense[rest])
    np.testing.assert_array_equal(at_now.genre, without.genre)
    np.testing.assert_array_equal(at_now.embedding, without.embedding)


# -- item features ---------------------------------------------------------------


def test_item_features() -> None:
    as_of = 1_000 * DAY
    items = np.array([0, 0, 1, 2])
    values = np.array([4.0, 2.0, 5.0, 1.0])
    positive = values >= 4
    ts = np.array([as_of - 200 * DAY, as_of - 10 * DAY, as_of - 100 * DAY, as_of - 89 * DAY])
    genre = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=np.float32)
    years = np.array([1990.0, 2020.0, np.nan, 1960.0])
    dense, first_ts = F.item_features(4, items, values, positive, ts, genre, years, as_of)

    assert dense.dtype == np.float32 and dense.shape == (4, F.item_dim(2)) and dense.flags.c_contiguous
    assert first_ts.dtype == np.float64
    expect = np.array(
        [
            # log pop, mean value, pos rate, log recent pop, year, genres
            [math.log1p(2), 3.0, 0.5, math.log1p(1), 0.0, 1, 0],
            [math.log1p(1), 5.0, 1.0, 0.0, 1.0, 0, 1],
            [math.log1p(1), 1.0, 0.0, math.log1p(1), 0.0, 1, 1],  # unknown year -> 0
            [0.0, 0.0, 0.0, 0.0, -1.0, 0, 0],  # never interacted with
        ],
        dtype=np.float32,
    )
    np.testing.assert_allclose(dense, expect, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(first_ts, [as_of - 200 * DAY, as_of - 100 * DAY, as_of - 89 * DAY, -1.0])


# -- names and the schema hash ---------------------------------------------------


def test_feature_names_layout() -> None:
    genres = ["Drama", "Comedy", "Action"]
    names = F.feature_names(genres)
    g = len(genres)
    assert len(names) == F.user_dim(g) + F.item_dim(g) + 4 + 4
    assert len(set(names)) == len(names)
    assert names[: F.user_dim(g)] == [
        *F.USER_SCALARS,
        *F.SESSION_SCALARS,
        "s_genre_Drama",
        "s_genre_Comedy",
        "s_genre_Action",
        "u_genre_Drama",
        "u_genre_Comedy",
        "u_genre_Action",
    ]
    assert names[F.user_dim(g) : F.user_dim(g) + F.item_dim(g)] == [
        *F.ITEM_SCALARS,
        "i_genre_Drama",
        "i_genre_Comedy",
        "i_genre_Action",
    ]
    assert names[-8:] == [*F.CROSS, *F.CONTEXT]
    assert len(F.feature_names([])) == 6 + 5 + 4 + 4


def test_schema_hash() -> None:
    base = F.schema_hash(["Drama", "Comedy"], 48)
    assert base == F.schema_hash(["Drama", "Comedy"], 48)  # stable
    assert len(base) == 16 and int(base, 16) >= 0
    assert F.schema_hash(["Comedy", "Drama"], 48) != base  # order matters: columns move
    assert F.schema_hash(["Drama", "Comedy", "Horror"], 48) != base
    assert F.schema_hash(["Drama"], 48) != base
    assert F.schema_hash(["Drama", "Comedy"], 32) != base
