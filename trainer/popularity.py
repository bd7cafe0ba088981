"""Fallback and candidate lists: global popularity, trending, fresh."""

from __future__ import annotations

import numpy as np

from trainer.data import Interactions
from trainer.features import RECENT_DAYS, SECONDS_PER_DAY

LIST_LENGTH = 1000
# Which list answers each surface on the POPULARITY rung.
SURFACES = {"home": "global", "trending": "trending", "new": "fresh"}


def _top(keys: tuple[np.ndarray, ...], valid: np.ndarray, n: int) -> np.ndarray:
    """Indices sorted by the keys (descending, the first key most significant)."""
    order = np.lexsort(tuple(-k for k in reversed(keys)))
    return order[valid[order]][:n].astype(np.uint32)


def popularity_lists(data: Interactions, n_items: int, as_of: float, n: int = LIST_LENGTH) -> dict[str, np.ndarray]:
    count = np.bincount(data.item, minlength=n_items).astype(np.float64)
    pos = np.bincount(data.item[data.positive], minlength=n_items).astype(np.float64)
    recent = data.timestamp >= as_of - RECENT_DAYS * SECONDS_PER_DAY
    rpos = np.bincount(data.item[recent & data.positive], minlength=n_items).astype(np.float64)
    rcount = np.bincount(data.item[recent], minlength=n_items).astype(np.float64)
    first = np.full(n_items, np.inf)
    np.minimum.at(first, data.item, data.timestamp)
    seen = count > 0
    global_ = _top((pos, count), seen, n)
    trending = _top((rpos, rcount, pos), rcount > 0, n)
    if len(trending) < n:
        trending = np.concatenate([trending, global_[~np.isin(global_, trending)]])[:n]
    fresh = _top((np.where(seen, first, -np.inf), pos), seen, n)
    return {"global": global_, "trending": trending.astype(np.uint32), "fresh": fresh}
