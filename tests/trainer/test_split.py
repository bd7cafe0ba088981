"""The evaluation protocol's splits (trainer.split), on MovieLens and on hand-made data."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from trainer.data import Dataset, Interactions, load_movielens
from trainer.split import is_cold_user, protocol_split, tail_split, temporal_split


def sha1_cold(user_id: str) -> bool:
    return int(hashlib.sha1(str(user_id).encode()).hexdigest(), 16) % 10 == 0


@pytest.fixture(scope="module")
def movielens() -> Dataset:
    return load_movielens()


def rows_of(data: Interactions) -> list[tuple[str, float, int]]:
    return [(data.user_ids[u], float(t), int(i)) for u, t, i in zip(data.user, data.timestamp, data.item, strict=True)]


def check_protocol(data: Interactions, item_key: list[str]) -> None:
    """Every property of the protocol split, checked from first principles."""
    split = protocol_split(data)
    train, warm, cold = split.train, split.test_warm, split.test_cold
    # a partition of the rows
    assert len(train) + len(warm) + len(cold) == len(data)
    all_rows = sorted(rows_of(data))
    assert sorted(rows_of(train) + rows_of(warm) + rows_of(cold)) == all_rows

    # cold users: exactly the sha1 % 10 == 0 users, none of them in train or warm test
    expected_cold = [u for u in data.user_ids if sha1_cold(u)]
    assert split.cold_users == expected_cold
    train_users = {train.user_ids[u] for u in train.user}
    warm_users = {warm.user_ids[u] for u in warm.user}
    cold_users = {cold.user_ids[u] for u in cold.user}
    assert not train_users & set(expected_cold)
    assert not warm_users & set(expected_cold)
    assert cold_users == set(expected_cold) & {data.user_ids[u] for u in data.user}
    assert (
        np.bincount(cold.user, minlength=len(data.user_ids))
        == np.bincount(data.user, minlength=len(data.user_ids)) * np.array([sha1_cold(u) for u in data.user_ids])
    ).all()  # all of a cold user's rows

    # warm users: the last ceil(20%) by (timestamp, item id)
    for u in range(len(data.user_ids)):
        if sha1_cold(data.user_ids[u]):
            continue
        mine = data.user == u
        if not mine.any():
            continue
        ordered = sorted(
            zip(
                data.timestamp[mine].tolist(),
                [item_key[i] for i in data.item[mine]],
                data.item[mine].tolist(),
                strict=True,
            )
        )
        k = math.ceil(0.2 * len(ordered))
        expect_test = [(t, i) for t, _, i in ordered[-k:]]
        expect_train = [(t, i) for t, _, i in ordered[:-k]]
        got_test = [
            (float(t), int(i)) for t, i in zip(warm.timestamp[warm.user == u], warm.item[warm.user == u], strict=True)
        ]
        got_train = [
            (float(t), int(i))
            for t, i in zip(train.timestamp[train.user == u], train.item[train.user == u], strict=True)
        ]
        assert got_test == expect_test
        assert got_train == expect_train
        if got_train:
            # nothing in train is later than the user's first test row
            first_test = ordered[-k][:2]
            assert max((t, item_key[i]) for t, i in got_train) < first_test


def test_protocol_split_on_movielens(movielens: Dataset) -> None:
    data = movielens.interactions
    check_protocol(data, movielens.catalog.item_ids)
    split = protocol_split(data)
    n_cold = sum(sha1_cold(u) for u in data.user_ids)
    assert len(split.cold_users) == n_cold and 0 < n_cold < len(data.user_ids) // 4
    # every warm user has a test part and (with >= 20 ratings each) a training part
    warm_users = set(data.user_ids) - set(split.cold_users)
    assert {split.test_warm.user_ids[u] for u in np.unique(split.test_warm.user)} == warm_users
    assert {split.train.user_ids[u] for u in np.unique(split.train.user)} == warm_users
    # about 20% of the warm rows, never less
    n_warm_rows = len(split.train) + len(split.test_warm)
    assert 0.2 <= len(split.test_warm) / n_warm_rows < 0.21


def make_interactions(rows: list[tuple[str, float, int]], user_ids: list[str], n_items: int) -> Interactions:
    """Interactions sorted like the loader sorts them: (user, timestamp, item id string)."""
    key = {u: k for k, u in enumerate(user_ids)}
    rows = sorted(rows, key=lambda r: (key[r[0]], r[1], f"m{r[2]:03d}"))
    user = np.array([key[r[0]] for r in rows], dtype=np.int64)
    return Interactions(
        list(user_ids),
        user,
        np.array([r[2] for r in rows], dtype=np.int64),
        np.full(len(rows), 4.0),
        np.ones(len(rows), dtype=bool),
        np.array([r[1] for r in rows], dtype=np.float64),
    )


@pytest.fixture
def tiny() -> tuple[Interactions, list[str]]:
    cold = next(f"u{k}" for k in range(1000) if sha1_cold(f"u{k}"))
    warm = [f"u{k}" for k in range(1000) if not sha1_cold(f"u{k}")][:3]
    assert not any(is_cold_user(u) for u in warm) and is_cold_user(cold)
    rows = [
        # warm[0]: 10 rows -> the last 2 are held out; a tie at t=9 broken by item id
        *[(warm[0], float(t), t) for t in range(1, 9)],
        (warm[0], 9.0, 12),
        (warm[0], 9.0, 11),
        # warm[1]: 1 row -> ceil(0.2) = 1: all of it is test
        (warm[1], 5.0, 3),
        # warm[2]: 6 rows -> 2 held out, with a tie at the cut (t=4)
        (warm[2], 1.0, 1),
        (warm[2], 2.0, 2),
        (warm[2], 3.0, 3),
        (warm[2], 4.0, 7),
        (warm[2], 4.0, 5),
        (warm[2], 4.0, 6),
        # the cold user
        (cold, 1.0, 1),
        (cold, 100.0, 2),
    ]
    users = [warm[0], cold, warm[1], warm[2]]
    return make_interactions(rows, users, 20), users


def test_protocol_split_on_a_tiny_dataset(tiny: tuple[Interactions, list[str]]) -> None:
    data, users = tiny
    item_key = [f"m{i:03d}" for i in range(20)]
    check_protocol(data, item_key)
    split = protocol_split(data)
    w0, cold, w1, w2 = users
    assert split.cold_users == [cold]

    def items(part: Interactions, user: str) -> list[int]:
        return part.item[part.user == users.index(user)].tolist()

    assert items(split.test_warm, w0) == [11, 12]
    assert items(split.train, w0) == list(range(1, 9))
    assert items(split.test_warm, w1) == [3] and items(split.train, w1) == []
    assert items(split.test_warm, w2) == [6, 7]  # the tie at t=4 is cut by item id
    assert items(split.train, w2) == [1, 2, 3, 5]
    assert items(split.test_cold, cold) == [1, 2]
    assert items(split.train, cold) == [] and items(split.test_warm, cold) == []


def test_tail_split(tiny: tuple[Interactions, list[str]]) -> None:
    data, _ = tiny
    head, tail = tail_split(data, 0.5)
    assert len(head) + len(tail) == len(data)
    for u in np.unique(data.user):
        n = int((data.user == u).sum())
        assert int((tail.user == u).sum()) == math.ceil(0.5 * n)
        if (head.user == u).any():
            assert head.timestamp[head.user == u].max() <= tail.timestamp[tail.user == u].min()


def test_temporal_split_on_movielens(movielens: Dataset) -> None:
    data = movielens.interactions
    train, test, cut = temporal_split(data)
    assert cut == float(np.quantile(data.timestamp, 0.9))
    assert len(train) + len(test) == len(data)
    assert train.timestamp.max() < cut <= test.timestamp.min()
    assert 0.09 <= len(test) / len(data) <= 0.11
    # on small data few users are on both sides: that is why the count is reported
    both = np.intersect1d(np.unique(train.user), np.unique(test.user))
    assert 0 < len(both) < len(data.user_ids) // 2


def test_temporal_split_cut_on_a_tiny_dataset(tiny: tuple[Interactions, list[str]]) -> None:
    data, _ = tiny
    train, test, cut = temporal_split(data, 0.5)
    assert cut == float(np.median(data.timestamp))
    assert (train.timestamp < cut).all() and (test.timestamp >= cut).all()
    assert len(train) + len(test) == len(data)
