"""HDR histograms: percentiles, merging across workers, the encoded form."""

from __future__ import annotations

import pytest

from node.loadgen.histogram import LatencyHistogram


def test_percentiles_in_ms() -> None:
    h = LatencyHistogram()
    for us in range(1, 10_001):  # 1 us .. 10 ms, uniform
        h.record_us(us)
    assert h.count == 10_000
    assert h.percentile_ms(50) == pytest.approx(5.0, rel=0.01)
    assert h.percentile_ms(99) == pytest.approx(9.9, rel=0.01)
    assert h.max_ms() == pytest.approx(10.0, rel=0.01)


def test_merge_of_encoded_histograms_is_the_histogram_of_all_values() -> None:
    fast, slow, both = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for k in range(900):
        fast.record_us(1000 + k)
        both.record_us(1000 + k)
    for k in range(100):
        slow.record_us(50_000 + k)
        both.record_us(50_000 + k)
    merged = LatencyHistogram.decode(fast.encode())
    merged.merge(LatencyHistogram.decode(slow.encode()))
    assert merged.count == 1000
    for p in (50, 90, 95, 99, 99.9):
        assert merged.percentile_ms(p) == both.percentile_ms(p)
    # The slow worker's tail shows in the merged P95 but in neither worker's own P50.
    assert merged.percentile_ms(95) >= 50.0 > fast.percentile_ms(95)


def test_count_between_and_clamping() -> None:
    h = LatencyHistogram()
    for ms in (0.5, 1.5, 1.6, 30.0):
        h.record_us(ms * 1000)
    h.record_us(-5)  # clamped to the lowest trackable value, not lost
    assert h.count == 5
    assert h.count_between_ms(1.0, 2.0) == 2
    assert h.count_between_ms(20.0, float("inf")) == 1
    assert h.count_between_ms(0.0, 1.0) == 2
