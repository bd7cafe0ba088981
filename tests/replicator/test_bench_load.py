"""When a node began to answer from a version, read from the load's answers (replicator.bench_load)."""

from __future__ import annotations

import math

import numpy as np

from replicator.bench_load import Sample, first_served, ratio_interval


def sample(t: float, version: str, target: str = "a", ok: bool = True) -> Sample:
    return Sample(t, 1.0, ok, version if ok else "", 1.0 if ok else math.nan, target)


def test_the_first_answer_after_the_last_other_one() -> None:
    samples = [sample(0.0, "v1"), sample(1.0, "v2"), sample(2.0, "v1"), sample(3.0, "v2"), sample(4.0, "v2")]
    # A process of the node still answered v1 at 2.0: v2 for good from 3.0 on.
    assert first_served(samples, "a", "v2", 0.0, 10.0) == 3.0
    # Only the window counts, and only the target's own answers.
    assert first_served(samples, "a", "v2", 3.5, 10.0) == 4.0
    assert first_served([*samples, sample(3.5, "v1", "b")], "a", "v2", 0.0, 10.0) == 3.0


def test_a_failure_is_not_an_answer_from_the_version() -> None:
    samples = [sample(1.0, "v2"), sample(2.0, "", ok=False), sample(3.0, "v2")]
    assert first_served(samples, "a", "v2", 0.0, 10.0) == 3.0


def test_none_when_the_last_answer_was_another_version() -> None:
    assert first_served([sample(1.0, "v2"), sample(2.0, "v1")], "a", "v2", 0.0, 10.0) is None
    assert first_served([], "a", "v2", 0.0, 10.0) is None


def latencies(ms: np.ndarray) -> list[Sample]:
    return [Sample(float(k), float(x), True, "v", 1.0, "a") for k, x in enumerate(ms)]


def test_the_ratio_interval_spans_one_for_the_same_distribution_and_not_for_a_slower_one() -> None:
    rng = np.random.default_rng(7)
    steady = latencies(rng.lognormal(1.0, 0.5, 3000))
    same = latencies(rng.lognormal(1.0, 0.5, 1500))
    lo, hi = ratio_interval(same, steady)  # type: ignore[misc]
    assert lo < 1.0 < hi
    # Two P99.9s of a few thousand requests: a single run's ratio is uncertain by tens of percent.
    assert hi - lo > 0.2
    slower = latencies(2 * rng.lognormal(1.0, 0.5, 1500))
    lo, hi = ratio_interval(slower, steady)  # type: ignore[misc]
    assert 1.0 < lo < 2.0 < hi


def test_the_ratio_interval_is_seeded_and_needs_both_windows() -> None:
    rng = np.random.default_rng(8)
    a, b = latencies(rng.exponential(3.0, 500)), latencies(rng.exponential(3.0, 900))
    assert ratio_interval(a, b) == ratio_interval(a, b)
    assert ratio_interval([], b) is None and ratio_interval(a, []) is None
