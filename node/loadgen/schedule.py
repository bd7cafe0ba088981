"""Arrival schedules: when each request is meant to leave."""

from __future__ import annotations

import numpy as np


def poisson_schedule(rate: float, duration_s: float, seed: int = 0) -> np.ndarray:
    """f64 offsets in seconds from the start, in [0, duration_s): a Poisson process of ``rate`` per second."""
    if rate <= 0 or duration_s <= 0:
        raise ValueError(f"rate and duration must be positive, got {rate} and {duration_s}")
    rng = np.random.default_rng(seed)
    expected = rate * duration_s
    n = int(expected + 6 * np.sqrt(expected) + 16)
    times = np.cumsum(rng.exponential(1.0 / rate, n))
    while times[-1] < duration_s:  # rare: draw more
        times = np.concatenate([times, times[-1] + np.cumsum(rng.exponential(1.0 / rate, n))])
    return times[times < duration_s]


def split(schedule: np.ndarray, parts: int) -> list[np.ndarray]:
    """Deal a schedule round-robin to ``parts`` workers; each part is itself in time order."""
    if parts < 1:
        raise ValueError(f"parts must be at least 1, got {parts}")
    return [schedule[i::parts] for i in range(parts)]
