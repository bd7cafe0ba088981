"""The raw material of the online features, as the updater stores it in Redis.

A user's history is a bounded Redis list of interactions, oldest first; a
session is a list of events with a TTL. Entries name items by id, not by a
bundle's row, so that they outlive bundles. The first time the updater
touches a user, it seeds the history with the user's batch interactions from
the bundle (:func:`seed_entries`), so that the history holds everything the
trainer would use. :func:`user_arrays` turns a history into
:func:`trainer.features.user_features` of one bundle: the same definition the
trainer uses offline, on rows in the same order (time, then item id).

The session block depends on the request time, so it is computed where the
state is read (:func:`session_state`), from the recent interactions the packed
state carries (:func:`recent_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from node.types import UserState
from node.user_value import Recent
from trainer import features as feature_defs
from trainer.event_labels import Interaction
from trainer.features import UserFeatures, user_features


def history_entry(ts: float, it: Interaction, item_id: str) -> str:
    return f"{ts!r}|{it.value!r}|{int(it.positive)}|{item_id}"


def seed_entries(ts: np.ndarray, values: np.ndarray, positive: np.ndarray, item_ids: Sequence[str]) -> list[str]:
    """History entries for batch interactions (oldest first), as the trainer saw them."""
    return [
        f"{t!r}|{v!r}|{int(p)}|{item}"
        for t, v, p, item in zip(
            np.asarray(ts, np.float64).tolist(),
            np.asarray(values, np.float64).tolist(),
            np.asarray(positive, bool).tolist(),
            item_ids,
            strict=True,
        )
    ]


def session_entry(ts: float, kind: str, value: float, item_id: str) -> str:
    return f"{ts!r}|{kind}|{value!r}|{item_id}"


@dataclass(frozen=True)
class SessionEvent:
    ts: float
    kind: str
    value: float
    item_id: str


def parse_session(entries: Sequence[bytes]) -> list[SessionEvent]:
    out = []
    for raw in entries:
        ts, kind, value, item = raw.decode().split("|", 3)
        out.append(SessionEvent(float(ts), kind, float(value), item))
    return out


@dataclass(frozen=True)
class HistoryRows:
    """A history as arrays of one bundle's items, in the trainer's order: (time, item id)."""

    ts: np.ndarray  # f64
    value: np.ndarray  # f64
    positive: np.ndarray  # bool
    item: np.ndarray  # i64 item indices

    @classmethod
    def parse(cls, entries: Sequence[bytes], item_index: Mapping[str, int]) -> HistoryRows:
        """Items the bundle does not know are left out, as the trainer leaves out items outside its catalog."""
        rows: list[tuple[float, str, float, bool, int]] = []
        for raw in entries:
            ts, value, positive, item = raw.decode().split("|", 3)
            idx = item_index.get(item)
            if idx is not None:
                rows.append((float(ts), item, float(value), positive == "1", idx))
        rows.sort(key=lambda r: (r[0], r[1]))
        return cls(
            np.array([r[0] for r in rows], dtype=np.float64),
            np.array([r[2] for r in rows], dtype=np.float64),
            np.array([r[3] for r in rows], dtype=bool),
            np.array([r[4] for r in rows], dtype=np.int64),
        )


def recent_rows(rows: HistoryRows) -> Recent:
    """The interactions that a session window ending after the last one can hold.

    A request at ``now`` after the last interaction sees the last
    ``SESSION_MAX`` interactions of ``[now - SESSION_WINDOW_S, now)``: a
    suffix of those at or after ``last - SESSION_WINDOW_S``.
    """
    if len(rows.ts) == 0:
        return Recent.empty()
    at = np.flatnonzero(rows.ts >= rows.ts[-1] - feature_defs.SESSION_WINDOW_S)[-feature_defs.SESSION_MAX :]
    return Recent(rows.ts[at], rows.item[at].astype(np.uint32), rows.positive[at])


def user_arrays(
    entries: Sequence[bytes],
    item_index: Mapping[str, int],
    item_emb: np.ndarray,
    item_genre: np.ndarray,
) -> tuple[UserFeatures, np.ndarray, Recent]:
    """Features (session block empty), seen items (u32, oldest first) and recent interactions of a history."""
    rows = HistoryRows.parse(entries, item_index)
    features = user_features(rows.item, rows.value, rows.positive, rows.ts, item_emb, item_genre)
    return features, rows.item.astype(np.uint32), recent_rows(rows)


def session_state(state: UserState, recent: Recent, now: float, item_genre: np.ndarray) -> UserState:
    """``state`` with the session block of a request at ``now`` (trainer.features.session_block)."""
    if len(recent.ts) == 0:
        return state
    block = feature_defs.session_block(recent.items, recent.positive, recent.ts, now, item_genre)
    if not block.any():
        return state
    dense = feature_defs.with_session(state.dense, block)
    return UserState(dense, state.embedding, state.genre, state.last_ts, state.seen)
