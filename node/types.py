"""Plain data types of the ranking pipeline (no protobuf here)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np


class ServedBy(enum.IntEnum):
    """The ladder rung that served a response (values match ``edgerank.v1.ServedBy``)."""

    FULL = 1
    STALE_FEATURES = 2
    RETRIEVAL_ORDER = 3
    POPULARITY = 4


class Source(enum.IntEnum):
    """The candidate source of an item (values match ``edgerank.v1.Source``)."""

    ANN = 1
    SESSION = 2
    TRENDING = 3
    FRESH = 4
    EDITORIAL = 5
    POPULAR = 6
    EXPLORE = 7


@dataclass(frozen=True)
class RankQuery:
    """A validated ranking request."""

    user_id: str
    surface: str
    num_results: int
    pool_size: int
    now_ts: float | None = None  # unix seconds; None = the node's clock
    exclude_item_ids: tuple[str, ...] = ()
    request_id: str = ""
    session_id: str = ""
    # Seconds this request may take (its gRPC deadline capped at the node's budget); None = the node's budget.
    budget_s: float | None = None


@dataclass(frozen=True)
class UserState:
    """What the pipeline knows about a user (from the feature store)."""

    dense: np.ndarray  # f32 [6 + 2G], the user block (trainer.features)
    embedding: np.ndarray  # f32 [D]
    genre: np.ndarray  # f32 [G]
    last_ts: float  # unix seconds, -1 if unknown
    seen: np.ndarray  # u32 item indices, oldest first


@dataclass(frozen=True)
class FeatureSnapshot:
    """The features a response was scored from, kept by reference for exposure logging."""

    user: UserState
    candidates: np.ndarray  # u32 item indices, the rows of ``matrix``
    matrix: np.ndarray  # f32 [len(candidates), F]
    now_ts: float


@dataclass(frozen=True)
class RankedItem:
    item_id: str
    score: float
    rank: int  # 1-based
    source: Source


@dataclass(frozen=True)
class RankResult:
    items: tuple[RankedItem, ...]
    bundle_version: str
    model_version: str
    served_by: ServedBy
    experiment_arm: str
    stages: dict[str, float]  # stage name -> ms, in pipeline order
    total_ms: float
    request_id: str = ""
    features: FeatureSnapshot | None = field(default=None, repr=False)
