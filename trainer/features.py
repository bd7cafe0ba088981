"""The one definition of edgerank's ranking features, used offline and online.

A feature row for (user, item, time) is, in this order:

    [ user block | item block | cross block | context block ]

* user block (``6 + 2G``): history summaries computed by :func:`user_features`
  from the user's interactions strictly before the as-of time: four scalars,
  then the session block (:func:`session_block`: the interactions of the
  :data:`SESSION_WINDOW_S` before the request time, their count, positive
  rate and genre distribution), then the long-term genre affinity (last, so
  that ``dense[-G:]`` is the ``genre`` the assembler crosses with items).
* item block (``5 + G``): per-item statistics from the bundle's training data
  (:func:`item_features`).
* cross block (4): embedding dot product, genre affinity dot product, days
  since the user's last interaction, item age in days (both ``log1p``).
* context block (4): hour of day and day of week on the unit circle.

The Rust :class:`hotpath.Assembler` builds the matrix on the serving path;
the trainer uses the same assembler, and ``hotpath.reference.assemble`` is the
NumPy statement of the same computation, used to check parity.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np

USER_SCALARS = ("u_log_count", "u_mean_value", "u_pos_rate", "u_log_span_days")
SESSION_SCALARS = ("s_log_count", "s_pos_rate")
ITEM_SCALARS = ("i_log_pop", "i_mean_value", "i_pos_rate", "i_log_pop_recent", "i_year")
CROSS = ("x_emb_dot", "x_genre_dot", "x_user_recency", "x_item_age")
CONTEXT = ("c_hour_sin", "c_hour_cos", "c_dow_sin", "c_dow_cos")

SECONDS_PER_DAY = 86400.0
RECENT_DAYS = 90.0
# The session block: the user's last SESSION_MAX interactions in the SESSION_WINDOW_S before the request.
SESSION_WINDOW_S = 1800.0
SESSION_MAX = 100
# Years are centred and scaled so that the student sees values near [-1, 1].
YEAR_CENTER = 1990.0
YEAR_SCALE = 30.0


def feature_names(genres: list[str]) -> list[str]:
    """Column names of the feature matrix for a bundle with this genre vocabulary."""
    return [
        *USER_SCALARS,
        *SESSION_SCALARS,
        *(f"s_genre_{g}" for g in genres),
        *(f"u_genre_{g}" for g in genres),
        *ITEM_SCALARS,
        *(f"i_genre_{g}" for g in genres),
        *CROSS,
        *CONTEXT,
    ]


def schema_hash(genres: list[str], embedding_dim: int) -> str:
    """A stable hash of the feature layout; bundles and stored features carry it."""
    doc = {"names": feature_names(genres), "embedding_dim": int(embedding_dim)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def user_dim(n_genres: int) -> int:
    return len(USER_SCALARS) + session_dim(n_genres) + n_genres


def session_dim(n_genres: int) -> int:
    return len(SESSION_SCALARS) + n_genres


def session_slice(n_genres: int) -> slice:
    """Where the session block sits in a user block."""
    return slice(len(USER_SCALARS), len(USER_SCALARS) + session_dim(n_genres))


def user_genre(dense: np.ndarray, n_genres: int) -> np.ndarray:
    """The long-term genre affinity inside a user block: the ``genre`` argument of the assembler."""
    return dense[len(dense) - n_genres :]


def with_session(dense: np.ndarray, block: np.ndarray) -> np.ndarray:
    """A copy of the user block ``dense`` with its session block replaced by ``block``."""
    out = np.array(dense, dtype=np.float32, copy=True)
    out[session_slice(len(block) - len(SESSION_SCALARS))] = block
    return out


def in_session(timestamps: np.ndarray, now: float) -> np.ndarray:
    """Positions of the interactions that make the session block at ``now``.

    The last :data:`SESSION_MAX` of those in ``[now - SESSION_WINDOW_S, now)``;
    ``timestamps`` must be in time order (the order of a history).
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    where = np.flatnonzero((ts >= now - SESSION_WINDOW_S) & (ts < now))
    return where[-SESSION_MAX:]


def session_block(
    item_idx: np.ndarray, positive: np.ndarray, timestamps: np.ndarray, now: float | None, item_genre: np.ndarray
) -> np.ndarray:
    """f32 [2 + G]: log1p(count), positive rate and genre distribution of the session at ``now``.

    The session is :func:`in_session` of a time-ordered history. The genre
    distribution is over its positive interactions (all of them when none is
    positive), like the long-term one. ``now=None`` (no request time) gives zeros.
    """
    n_genres = item_genre.shape[1]
    if now is None or len(item_idx) == 0:
        return np.zeros(session_dim(n_genres), np.float32)
    at = in_session(timestamps, float(now))
    if len(at) == 0:
        return np.zeros(session_dim(n_genres), np.float32)
    items = np.asarray(item_idx)[at]
    pos = np.asarray(positive, dtype=bool)[at]
    basis = items[pos] if pos.any() else items
    genre = item_genre[basis].astype(np.float64).sum(axis=0)
    total = float(genre.sum())
    genre = genre / total if total > 0 else genre
    return np.concatenate([[math.log1p(len(at)), float(pos.mean())], genre]).astype(np.float32)


def item_dim(n_genres: int) -> int:
    return len(ITEM_SCALARS) + n_genres


def context_vector(ts: float) -> np.ndarray:
    """Context features for a unix timestamp in seconds (UTC)."""
    hour = (ts % SECONDS_PER_DAY) / 3600.0
    # 1970-01-01 was a Thursday; day 0 = Monday.
    dow = ((ts // SECONDS_PER_DAY) + 3) % 7
    a = 2.0 * math.pi * hour / 24.0
    b = 2.0 * math.pi * dow / 7.0
    return np.array([math.sin(a), math.cos(a), math.sin(b), math.cos(b)], dtype=np.float32)


@dataclass(frozen=True)
class UserFeatures:
    """What the assembler needs about one user, as of some time."""

    dense: np.ndarray  # f32 [6 + 2G], the user block
    embedding: np.ndarray  # f32 [D], unit norm, zeros if no history
    genre: np.ndarray  # f32 [G], the genre affinity (also inside ``dense``)
    last_ts: float  # unix seconds of the last interaction, -1 if none

    @property
    def known(self) -> bool:
        return self.last_ts >= 0


def user_features(
    item_idx: np.ndarray,
    values: np.ndarray,
    positive: np.ndarray,
    timestamps: np.ndarray,
    item_emb: np.ndarray,
    item_genre: np.ndarray,
    *,
    now: float | None = None,
    half_life_days: float = 365.0,
) -> UserFeatures:
    """Features of one user from their history (all rows are before the as-of time).

    ``item_idx`` are bundle item indices; ``values`` the normalised rating or
    label; ``positive`` a bool mask; ``timestamps`` unix seconds, in time order.
    The embedding is the recency-weighted mean of the embeddings of positive
    items (or of all items when there is no positive), normalised to unit
    length. ``now`` is the request time of the session block (None: no session).
    """
    n_genres = item_genre.shape[1]
    dim = item_emb.shape[1]
    n = len(item_idx)
    if n == 0:
        return UserFeatures(
            dense=np.zeros(user_dim(n_genres), np.float32),
            embedding=np.zeros(dim, np.float32),
            genre=np.zeros(n_genres, np.float32),
            last_ts=-1.0,
        )
    ts = timestamps.astype(np.float64)
    last = float(ts.max())
    span_days = (last - float(ts.min())) / SECONDS_PER_DAY
    pos = positive.astype(bool)
    basis = pos if pos.any() else np.ones(n, bool)
    age_days = (last - ts[basis]) / SECONDS_PER_DAY
    w = np.power(0.5, age_days / half_life_days)
    emb = (w[:, None] * item_emb[item_idx[basis]].astype(np.float64)).sum(axis=0)
    norm = float(np.linalg.norm(emb))
    emb = emb / norm if norm > 0 else emb
    genre = item_genre[item_idx[basis]].astype(np.float64).sum(axis=0)
    total = float(genre.sum())
    genre = genre / total if total > 0 else genre
    dense = np.concatenate(
        [
            [math.log1p(n), float(values.mean()), float(pos.mean()), math.log1p(span_days)],
            session_block(item_idx, pos, ts, now, item_genre),
            genre,
        ]
    ).astype(np.float32)
    return UserFeatures(
        dense=dense,
        embedding=emb.astype(np.float32),
        genre=genre.astype(np.float32),
        last_ts=last,
    )


def item_features(
    n_items: int,
    item_idx: np.ndarray,
    values: np.ndarray,
    positive: np.ndarray,
    timestamps: np.ndarray,
    item_genre: np.ndarray,
    item_year: np.ndarray,
    as_of: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Item block for every item, from training interactions before ``as_of``.

    Returns ``(item_dense f32 [n_items, 5 + G], item_first_ts f64 [n_items])``.
    Items with no interaction get zeros and a first-seen time of -1 (unknown).
    """
    count = np.bincount(item_idx, minlength=n_items).astype(np.float64)
    value_sum = np.bincount(item_idx, weights=values, minlength=n_items)
    pos_sum = np.bincount(item_idx, weights=positive.astype(np.float64), minlength=n_items)
    recent = timestamps >= as_of - RECENT_DAYS * SECONDS_PER_DAY
    recent_count = np.bincount(item_idx[recent], minlength=n_items).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_value = np.where(count > 0, value_sum / np.maximum(count, 1), 0.0)
        pos_rate = np.where(count > 0, pos_sum / np.maximum(count, 1), 0.0)
    year = np.where(np.isfinite(item_year), (item_year - YEAR_CENTER) / YEAR_SCALE, 0.0)
    first_ts = np.full(n_items, np.inf)
    np.minimum.at(first_ts, item_idx, timestamps.astype(np.float64))
    first_ts[~np.isfinite(first_ts)] = -1.0
    dense = np.column_stack([np.log1p(count), mean_value, pos_rate, np.log1p(recent_count), year, item_genre]).astype(
        np.float32
    )
    return np.ascontiguousarray(dense), first_ts
