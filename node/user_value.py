"""The packed online user state: one Redis value per user.

Layout (little-endian)::

    b"ERU1" | u16 n | header (n bytes: "<feature-schema hash>\\0<embedding-space id>")
    | f64 last_ts | u32 D | u32 E | u32 S | f32[D] dense | f32[E] embedding | u32[S] seen

``seen`` are item indices of the bundle the value was computed with; the
header ties the value to that bundle's feature schema and embedding space, and
a reader serving another bundle must not use it (:func:`header`).
"""

from __future__ import annotations

import struct

import numpy as np

from node.types import UserState
from trainer import features as feature_defs

MAGIC = b"ERU1"
_LEN = struct.Struct("<H")
_BODY = struct.Struct("<dIII")


class MismatchedValue(ValueError):
    """A value computed for another feature schema or embedding space."""


def header(schema_hash: str, space_id: str) -> bytes:
    """The prefix every value computed for this schema and embedding space starts with."""
    text = f"{schema_hash}\0{space_id}".encode()
    return MAGIC + _LEN.pack(len(text)) + text


def pack(head: bytes, dense: np.ndarray, embedding: np.ndarray, last_ts: float, seen: np.ndarray) -> bytes:
    dense = np.ascontiguousarray(dense, dtype="<f4")
    embedding = np.ascontiguousarray(embedding, dtype="<f4")
    seen = np.ascontiguousarray(seen, dtype="<u4")
    return b"".join(
        (
            head,
            _BODY.pack(float(last_ts), len(dense), len(embedding), len(seen)),
            dense.tobytes(),
            embedding.tobytes(),
            seen.tobytes(),
        )
    )


def unpack(head: bytes, value: bytes) -> UserState:
    """The state in ``value``; raises ValueError if it was not packed under ``head``."""
    if not value.startswith(head):
        raise MismatchedValue("the value's feature schema or embedding space is not the bundle's")
    at = len(head)
    if len(value) < at + _BODY.size:
        raise ValueError("truncated user value")
    last_ts, d, e, s = _BODY.unpack_from(value, at)
    at += _BODY.size
    if len(value) != at + 4 * (d + e + s):
        raise ValueError(f"user value has {len(value)} bytes for {d}+{e}+{s} entries")
    dense = np.frombuffer(value, "<f4", d, at).astype(np.float32)
    embedding = np.frombuffer(value, "<f4", e, at + 4 * d).astype(np.float32)
    seen = np.frombuffer(value, "<u4", s, at + 4 * (d + e)).astype(np.uint32)
    genre = dense[len(feature_defs.USER_SCALARS) :]
    return UserState(dense=dense, embedding=embedding, genre=genre, last_ts=float(last_ts), seen=seen)
