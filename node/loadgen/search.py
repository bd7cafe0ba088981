"""The maximum sustainable rate: a doubling ramp, then bisection.

A rate passes when, over a run at that rate, the P99 stays within the
budget, the achieved rate (replies per second, up to the last reply) is at
least ``min_achieved`` of the offered rate (requests scheduled per second),
and no request failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from node.loadgen.driver import RunResult


@dataclass(frozen=True)
class SearchConfig:
    budget_ms: float = 50.0
    min_achieved: float = 0.97
    start_rps: float = 200.0
    max_rps: float = 20_000.0
    step_s: float = 5.0
    bisect_steps: int = 4


def verdict(result: RunResult, offered_rps: float, config: SearchConfig) -> dict[str, Any]:
    """The figures of one step and whether it passes."""
    p99 = result.histogram.percentile_ms(99)
    achieved = result.achieved_rps()
    errors = sum(result.errors.values())
    return {
        "offered_rps": round(offered_rps, 1),
        "achieved_rps": round(achieved, 1),
        "p99_ms": round(p99, 3),
        "errors": errors,
        "passed": p99 <= config.budget_ms and achieved >= config.min_achieved * offered_rps and errors == 0,
    }


def find_max_rps(run: Callable[[float], tuple[RunResult, float]], config: SearchConfig) -> tuple[float, list[dict]]:
    """(the highest passing rate, every step). ``run(rate)`` returns (result, offered rate)."""
    steps: list[dict[str, Any]] = []

    def attempt(rate: float) -> bool:
        result, offered = run(rate)
        step = {"rate_rps": round(rate, 1), **verdict(result, offered, config)}
        steps.append(step)
        return bool(step["passed"])

    low, high = 0.0, None
    rate = config.start_rps
    while True:
        if attempt(rate):
            low = rate
            if rate >= config.max_rps:
                return low, steps
            rate = min(rate * 2, config.max_rps)
        else:
            high = rate
            break
    for _ in range(config.bisect_steps):
        mid = (low + high) / 2 if low > 0 else high / 2
        if attempt(mid):
            low = mid
        else:
            high = mid
    return low, steps
