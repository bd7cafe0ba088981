"""Latency histograms (HDR): record in microseconds, merge across workers, read in milliseconds."""

from __future__ import annotations

import threading

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 120_000_000  # two minutes: anything slower is clamped
SIGNIFICANT_DIGITS = 3


class LatencyHistogram:
    """An HDR histogram of latencies; ``record_us`` is safe to call from several threads."""

    def __init__(self) -> None:
        self._h = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
        self._lock = threading.Lock()

    def record_us(self, value_us: float) -> None:
        v = min(max(int(value_us), LOWEST_US), HIGHEST_US)
        with self._lock:
            self._h.record_value(v)

    @property
    def count(self) -> int:
        return int(self._h.get_total_count())

    def percentile_ms(self, p: float) -> float:
        return self._h.get_value_at_percentile(p) / 1000.0 if self.count else 0.0

    def max_ms(self) -> float:
        return self._h.get_max_value() / 1000.0 if self.count else 0.0

    def mean_ms(self) -> float:
        return self._h.get_mean_value() / 1000.0 if self.count else 0.0

    def count_between_ms(self, low_ms: float, high_ms: float) -> int:
        """Recorded values in [low_ms, high_ms)."""
        total = 0
        for item in self._h.get_recorded_iterator():
            if low_ms * 1000.0 <= item.value_iterated_to < high_ms * 1000.0:
                total += item.count_added_in_this_iter_step
        return total

    def encode(self) -> bytes:
        """A compact form to send between processes."""
        with self._lock:
            return bytes(self._h.encode())

    @classmethod
    def decode(cls, data: bytes) -> LatencyHistogram:
        out = cls()
        out._h.decode_and_add(data)
        return out

    def merge(self, other: LatencyHistogram) -> None:
        with self._lock:
            self._h.add(other._h)

    def summary(self) -> dict[str, float]:
        return {
            "p50_ms": round(self.percentile_ms(50), 3),
            "p99_ms": round(self.percentile_ms(99), 3),
            "p999_ms": round(self.percentile_ms(99.9), 3),
            "max_ms": round(self.max_ms(), 3),
        }
