"""The node's /metrics, differenced over a run: rungs, fallbacks, and each stage's count, mean and p99 bucket."""

from __future__ import annotations

from node.loadgen.scrape import Sample, summarize


def _stage(stage: str, buckets: dict[str, float], total_s: float) -> dict[Sample, float]:
    out: dict[Sample, float] = {}
    for le, count in buckets.items():
        out[("edgerank_stage_seconds_bucket", (("le", le), ("stage", stage)))] = count
    out[("edgerank_stage_seconds_count", (("stage", stage),))] = buckets["+Inf"]
    out[("edgerank_stage_seconds_sum", (("stage", stage),))] = total_s
    return out


def test_the_difference_of_two_scrapes() -> None:
    before = {
        ("edgerank_rank_requests_total", (("rung", "FULL"),)): 10.0,
        **_stage("retrieve", {"0.001": 10.0, "0.002": 10.0, "+Inf": 10.0}, 0.005),
    }
    after = {
        ("edgerank_rank_requests_total", (("rung", "FULL"),)): 110.0,
        ("edgerank_rank_requests_total", (("rung", "POPULARITY"),)): 5.0,
        ("edgerank_fallbacks_total", (("reason", "retrieval"),)): 5.0,
        # 100 more: 98 under 1 ms, 1 more under 2 ms, 1 slower: the 99th percentile is in the 2 ms bucket.
        **_stage("retrieve", {"0.001": 108.0, "0.002": 109.0, "+Inf": 110.0}, 0.055),
    }
    got = summarize(before, after)
    assert got["rungs"] == {"FULL": 100, "POPULARITY": 5}
    assert got["fallbacks"] == {"retrieval": 5}
    assert got["stages"] == {"retrieve": {"count": 100, "mean_ms": 0.5, "p99_le_ms": 2.0}}
