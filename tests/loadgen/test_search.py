"""The maximum-rate search: ramp, bisection, and a retry before a rate counts as failed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from node.loadgen.result import RunResult
from node.loadgen.search import SearchConfig, find_max_rps


def _fake(
    capacity: float, flaky: set[float] | None = None
) -> Callable[[float], tuple[RunResult, float, dict[str, Any]]]:
    """A node that keeps up to ``capacity``/s; the first try at a rate in ``flaky`` stalls once."""
    tried: set[float] = set()

    def run(rate: float) -> tuple[RunResult, float, dict[str, Any]]:
        r = RunResult(started=0.0, finished=1.0)
        stall = rate in (flaky or set()) and rate not in tried
        tried.add(rate)
        r.completed = int(min(rate, capacity))
        for _ in range(r.completed):
            r.histogram.record_us(200_000 if stall else 2_000)
        return r, rate, {}

    return run


def test_ramp_then_bisect_finds_the_capacity() -> None:
    best, steps = find_max_rps(_fake(700), SearchConfig(start_rps=100, bisect_steps=4, retries=0, cooldown_s=0))
    assert [s["rate_rps"] for s in steps[:4]] == [100, 200, 400, 800]
    assert 650 <= best <= 700
    assert all(s["passed"] == (s["rate_rps"] <= 700) for s in steps)


def test_one_stall_is_retried_and_does_not_cap_the_rate() -> None:
    best, steps = find_max_rps(
        _fake(700, flaky={200.0}), SearchConfig(start_rps=100, bisect_steps=2, retries=1, cooldown_s=0)
    )
    at_200 = [s for s in steps if s["rate_rps"] == 200]
    assert [s["passed"] for s in at_200] == [False, True]
    assert best >= 600


def test_without_retries_one_stall_caps_the_rate() -> None:
    best, _ = find_max_rps(
        _fake(700, flaky={200.0}), SearchConfig(start_rps=100, bisect_steps=2, retries=0, cooldown_s=0)
    )
    assert best < 200


def test_a_rate_served_down_the_ladder_fails() -> None:
    """Fast answers from POPULARITY for warm users are load shedding, not capacity."""

    def run(rate: float) -> tuple[RunResult, float, dict[str, Any]]:
        r = RunResult(started=0.0, finished=1.0, completed=int(rate), expected_full=int(rate))
        for _ in range(r.completed):
            r.histogram.record_us(1_000)
        r.degraded = int(rate) if rate > 300 else 0
        return r, rate, {}

    best, steps = find_max_rps(run, SearchConfig(start_rps=100, bisect_steps=3, retries=0, cooldown_s=0))
    assert 250 <= best <= 300
    assert steps[2]["degraded_share"] == 1.0 and not steps[2]["passed"]
