"""The evaluation protocol's splits (DESIGN.md, "Offline evaluation protocol").

* cold users: ``int(sha1(str(user_id)).hexdigest(), 16) % 10 == 0``, held out
  entirely;
* warm users: every other user's last ``ceil(20%)`` interactions, ordered by
  (timestamp, item id), are held out; everything before trains;
* temporal: a global cut at the 90th percentile of timestamps.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from trainer.data import Interactions

HOLDOUT_FRACTION = 0.2
TEMPORAL_QUANTILE = 0.9


def is_cold_user(user_id: str) -> bool:
    return int(hashlib.sha1(str(user_id).encode()).hexdigest(), 16) % 10 == 0


@dataclass
class Split:
    train: Interactions
    test_warm: Interactions
    test_cold: Interactions
    cold_users: list[str]


def _tail_mask(user: np.ndarray, fraction: float) -> np.ndarray:
    """True for each user's last ceil(fraction * n) rows (rows sorted by user, time)."""
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    ends = np.r_[starts[1:], len(user)]
    mask = np.zeros(len(user), dtype=bool)
    for s, e in zip(starts, ends, strict=True):
        k = math.ceil(fraction * (e - s))
        mask[e - k : e] = True
    return mask


def protocol_split(data: Interactions, fraction: float = HOLDOUT_FRACTION) -> Split:
    """Cold users out entirely; for the rest, each user's tail is the test set."""
    cold_flags = np.array([is_cold_user(u) for u in data.user_ids])
    cold_row = cold_flags[data.user]
    tail = _tail_mask(data.user, fraction)
    return Split(
        train=data.subset(~cold_row & ~tail),
        test_warm=data.subset(~cold_row & tail),
        test_cold=data.subset(cold_row),
        cold_users=[u for u, c in zip(data.user_ids, cold_flags, strict=True) if c],
    )


def tail_split(data: Interactions, fraction: float) -> tuple[Interactions, Interactions]:
    """(head, tail) with each user's last ceil(fraction) rows in the tail."""
    tail = _tail_mask(data.user, fraction)
    return data.subset(~tail), data.subset(tail)


def temporal_split(data: Interactions, quantile: float = TEMPORAL_QUANTILE) -> tuple[Interactions, Interactions, float]:
    """(train, test, cut): a global cut at the given quantile of timestamps."""
    cut = float(np.quantile(data.timestamp, quantile))
    before = data.timestamp < cut
    return data.subset(before), data.subset(~before), cut
