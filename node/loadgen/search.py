"""The maximum sustainable rate: a doubling ramp, then bisection.

A rate passes when, over a run at that rate, the P99 stays within the
budget, the achieved rate (replies per second, up to the last reply) is at
least ``min_achieved`` of the offered rate (requests scheduled per second),
no request failed, and at most ``max_degraded`` of the warm users' requests
were served below FULL (a node shedding load down the ladder is not
sustaining the rate). A rate that fails is tried ``retries`` more times
before it counts as failed (saturation fails every try; a neighbour's stall
on a shared machine does not).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from node.loadgen.result import RunResult


@dataclass(frozen=True)
class SearchConfig:
    budget_ms: float = 50.0
    min_achieved: float = 0.97
    start_rps: float = 200.0
    max_rps: float = 20_000.0
    step_s: float = 5.0
    bisect_steps: int = 4
    # A failing rate is run again this many times before it counts as failed: on a shared machine
    # one stall of a neighbour fails a short step, while saturation fails every try.
    retries: int = 1
    # The share of warm users' requests a passing rate may serve below FULL (a node that sheds
    # load down the ladder is not sustaining that rate).
    max_degraded: float = 0.01
    # After a failing try, wait this long: an overloaded node still drains its queue.
    cooldown_s: float = 3.0


def verdict(result: RunResult, offered_rps: float, config: SearchConfig) -> dict[str, Any]:
    """The figures of one step and whether it passes."""
    p99 = result.histogram.percentile_ms(99)
    achieved = result.achieved_rps()
    errors = sum(result.errors.values())
    degraded = result.degraded_share()
    return {
        "offered_rps": round(offered_rps, 1),
        "achieved_rps": round(achieved, 1),
        "p99_ms": round(p99, 3),
        "errors": errors,
        "degraded_share": round(degraded, 4),
        "rungs": dict(sorted(result.rungs.items())),
        "passed": p99 <= config.budget_ms
        and achieved >= config.min_achieved * offered_rps
        and errors == 0
        and degraded <= config.max_degraded,
    }


Step = tuple[RunResult, float, dict[str, Any]]


def find_max_rps(run: Callable[[float], Step], config: SearchConfig) -> tuple[float, list[dict]]:
    """(the highest passing rate, every step).

    ``run(rate)`` returns (result, offered rate, more figures for the step's record).
    """
    steps: list[dict[str, Any]] = []

    def attempt(rate: float) -> bool:
        for attempt_no in range(1 + config.retries):
            result, offered, figures = run(rate)
            step = {"rate_rps": round(rate, 1), "try": attempt_no + 1, **verdict(result, offered, config), **figures}
            steps.append(step)
            if step["passed"]:
                return True
            time.sleep(config.cooldown_s)
        return False

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
