"""The packed online user state: one Redis value per user.

Layout (little-endian)::

    b"ERU2" | u16 n | header (n bytes: "<feature-schema hash>\\0<embedding-space id>")
    | f64 last_ts | u32 D | u32 E | u32 S | u32 R
    | f32[D] dense | f32[E] embedding | u32[S] seen
    | f64[R] recent ts | u32[R] recent items | u8[R] recent positive

``seen`` and the recent items are item indices of the bundle the value was
computed with; the header ties the value to that bundle's feature schema and
embedding space, and a reader serving another bundle must not use it
(:func:`header`). ``dense`` is the user block with an empty session block:
the reader fills it in for its request time from the recent interactions
(:func:`node.history.session_state`), the ones that can still fall in a
session window (:func:`node.history.recent_rows`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from node.types import UserState
from trainer import features as feature_defs

MAGIC = b"ERU2"
_LEN = struct.Struct("<H")
_BODY = struct.Struct("<dIIII")


class MismatchedValue(ValueError):
    """A value computed for another feature schema or embedding space."""


@dataclass(frozen=True)
class Recent:
    """A user's interactions that a session window may still hold, oldest first."""

    ts: np.ndarray  # f64 unix seconds
    items: np.ndarray  # u32 item indices
    positive: np.ndarray  # bool

    @classmethod
    def empty(cls) -> Recent:
        return cls(np.empty(0, np.float64), np.empty(0, np.uint32), np.empty(0, bool))


def header(schema_hash: str, space_id: str) -> bytes:
    """The prefix every value computed for this schema and embedding space starts with."""
    text = f"{schema_hash}\0{space_id}".encode()
    return MAGIC + _LEN.pack(len(text)) + text


def pack(
    head: bytes,
    dense: np.ndarray,
    embedding: np.ndarray,
    last_ts: float,
    seen: np.ndarray,
    recent: Recent | None = None,
) -> bytes:
    recent = recent or Recent.empty()
    dense = np.ascontiguousarray(dense, dtype="<f4")
    embedding = np.ascontiguousarray(embedding, dtype="<f4")
    seen = np.ascontiguousarray(seen, dtype="<u4")
    r = len(recent.ts)
    if not len(recent.items) == len(recent.positive) == r:
        raise ValueError("recent ts, items and positive differ in length")
    return b"".join(
        (
            head,
            _BODY.pack(float(last_ts), len(dense), len(embedding), len(seen), r),
            dense.tobytes(),
            embedding.tobytes(),
            seen.tobytes(),
            np.ascontiguousarray(recent.ts, dtype="<f8").tobytes(),
            np.ascontiguousarray(recent.items, dtype="<u4").tobytes(),
            np.ascontiguousarray(recent.positive, dtype="u1").tobytes(),
        )
    )


def read(head: bytes, value: bytes) -> tuple[UserState, Recent]:
    """The state and the recent interactions in ``value``; raises ValueError if it was not packed under ``head``."""
    if not value.startswith(head):
        raise MismatchedValue("the value's feature schema or embedding space is not the bundle's")
    at = len(head)
    if len(value) < at + _BODY.size:
        raise ValueError("truncated user value")
    last_ts, d, e, s, r = _BODY.unpack_from(value, at)
    at += _BODY.size
    if len(value) != at + 4 * (d + e + s) + 13 * r:
        raise ValueError(f"user value has {len(value)} bytes for {d}+{e}+{s} entries and {r} recent ones")
    genres = (d - len(feature_defs.USER_SCALARS) - len(feature_defs.SESSION_SCALARS)) // 2
    if genres < 0 or d != feature_defs.user_dim(genres):
        raise ValueError(f"user value has a user block of {d} floats, not 6 + 2G")

    def take(dtype: str, n: int) -> np.ndarray:
        nonlocal at
        out = np.frombuffer(value, dtype, n, at)
        at += out.nbytes
        return out

    dense = take("<f4", d).astype(np.float32)
    embedding = take("<f4", e).astype(np.float32)
    seen = take("<u4", s).astype(np.uint32)
    recent = Recent(take("<f8", r).astype(np.float64), take("<u4", r).astype(np.uint32), take("u1", r).astype(bool))
    genre = feature_defs.user_genre(dense, genres)
    return UserState(dense=dense, embedding=embedding, genre=genre, last_ts=float(last_ts), seen=seen), recent


def unpack(head: bytes, value: bytes) -> UserState:
    """The state in ``value`` (its session block empty); raises ValueError if it was not packed under ``head``."""
    return read(head, value)[0]
