"""Poisson schedules: rate, order, and dealing them to workers."""

from __future__ import annotations

import numpy as np
import pytest

from node.loadgen.schedule import poisson_schedule, split


@pytest.mark.parametrize("rate", [50.0, 1000.0, 20000.0])
def test_mean_rate_and_exponential_gaps(rate: float) -> None:
    duration = 20.0
    s = poisson_schedule(rate, duration, seed=1)
    assert np.all(np.diff(s) > 0) and s[0] >= 0 and s[-1] < duration
    # The count of a Poisson process has sd sqrt(rate * duration): allow 5 sd.
    assert abs(len(s) - rate * duration) < 5 * np.sqrt(rate * duration)
    gaps = np.diff(s)
    # Exponential gaps: the sd equals the mean.
    assert gaps.std() == pytest.approx(gaps.mean(), rel=0.1)


def test_seed_reproduces_and_changes() -> None:
    assert np.array_equal(poisson_schedule(100, 5, seed=3), poisson_schedule(100, 5, seed=3))
    assert not np.array_equal(poisson_schedule(100, 5, seed=3)[:10], poisson_schedule(100, 5, seed=4)[:10])


def test_split_deals_every_arrival_once_in_order() -> None:
    s = poisson_schedule(500, 2, seed=0)
    parts = split(s, 3)
    assert sum(len(p) for p in parts) == len(s)
    assert np.array_equal(np.sort(np.concatenate(parts)), s)
    assert all(np.all(np.diff(p) > 0) for p in parts)


@pytest.mark.parametrize(("rate", "duration"), [(0, 1), (10, 0), (-1, 5)])
def test_rejects_non_positive(rate: float, duration: float) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        poisson_schedule(rate, duration)
