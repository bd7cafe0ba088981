"""How an interaction event counts as an interaction: the one mapping, used online and offline.

The feature updater turns events into history rows for
:func:`trainer.features.user_features`; the trainer turns events into labels
for exposures. Both use :func:`interaction`, so that what counts as positive is
defined once. Values are on the rating scale of the training data (positive at
4 and above).
"""

from __future__ import annotations

from typing import NamedTuple

# Event type names as in ``edgerank.v1.EventType`` (without the prefix).
IMPRESSION, CLICK, PLAY, SKIP, DWELL, RATING = "IMPRESSION", "CLICK", "PLAY", "SKIP", "DWELL", "RATING"
# Dwell at or above this many seconds is a positive; below SHORT_DWELL_S a negative signal.
LONG_DWELL_S = 30.0
SHORT_DWELL_S = 10.0
POSITIVE_VALUE = 4.0
NEGATIVE_VALUE = 1.0
POSITIVE_RATING = 4.0


class Interaction(NamedTuple):
    value: float
    positive: bool
    negative: bool  # a skip or a short dwell


def interaction(kind: str, value: float) -> Interaction | None:
    """The interaction an event stands for, or None (an impression, a neutral dwell)."""
    if kind in (CLICK, PLAY):
        return Interaction(POSITIVE_VALUE, True, False)
    if kind == RATING:
        return Interaction(float(value), value >= POSITIVE_RATING, False)
    if kind == SKIP:
        return Interaction(NEGATIVE_VALUE, False, True)
    if kind == DWELL:
        if value >= LONG_DWELL_S:
            return Interaction(POSITIVE_VALUE, True, False)
        if value < SHORT_DWELL_S:
            return Interaction(NEGATIVE_VALUE, False, True)
    return None
