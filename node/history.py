"""The raw material of the online features, as the updater stores it in Redis.

A user's history is a bounded Redis list of interactions, oldest first; a
session is a list of events with a TTL. Entries name items by id, not by a
bundle's row, so that they outlive bundles. :func:`user_arrays` turns a
history into :func:`trainer.features.user_features` of one bundle: the same
definition the trainer uses offline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from trainer.event_labels import Interaction
from trainer.features import UserFeatures, user_features


def history_entry(ts: float, it: Interaction, item_id: str) -> str:
    return f"{ts!r}|{it.value!r}|{int(it.positive)}|{item_id}"


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


def user_arrays(
    entries: Sequence[bytes],
    item_index: Mapping[str, int],
    item_emb: np.ndarray,
    item_genre: np.ndarray,
) -> tuple[UserFeatures, np.ndarray]:
    """Features and seen items (u32, oldest first) of a history, for one bundle's items.

    Items the bundle does not know are left out, as the trainer leaves out
    interactions with items outside its catalog.
    """
    rows: list[tuple[float, float, bool, int]] = []
    for raw in entries:
        ts, value, positive, item = raw.decode().split("|", 3)
        idx = item_index.get(item)
        if idx is not None:
            rows.append((float(ts), float(value), positive == "1", idx))
    rows.sort(key=lambda r: (r[0], r[3]))
    ts_a = np.array([r[0] for r in rows], dtype=np.float64)
    val_a = np.array([r[1] for r in rows], dtype=np.float64)
    pos_a = np.array([r[2] for r in rows], dtype=bool)
    item_a = np.array([r[3] for r in rows], dtype=np.int64)
    features = user_features(item_a, val_a, pos_a, ts_a, item_emb, item_genre)
    return features, item_a.astype(np.uint32)
