"""The node's own account of a run, from its Prometheus endpoint: scraped before and after, differenced.

What the node says it served (requests by rung, moves down the ladder by reason, each stage's latency
histogram) beside what the load generator measured, so that the two can be compared: the rung counts
must match the generator's, and the stage histograms say where the node's time went.
"""

from __future__ import annotations

import math
import urllib.request
from collections import defaultdict
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]
Sample = tuple[str, Labels]


def scrape(port: int, host: str = "127.0.0.1", timeout_s: float = 5.0) -> dict[Sample, float]:
    """Every sample of the node's /metrics, keyed by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout_s) as page:
        text = page.read().decode()
    out: dict[Sample, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return out


def _delta(
    before: dict[Sample, float], after: dict[Sample, float], name: str
) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v - before.get((n, labels), 0.0) for (n, labels), v in after.items() if n == name}


def summarize(before: dict[Sample, float], after: dict[Sample, float]) -> dict[str, Any]:
    """Requests by rung, fallbacks by reason, and per stage: count, mean ms, and the upper bound (ms) of
    the histogram bucket that holds the 99th percentile, over the interval between the two scrapes."""
    rungs = {dict(k)["rung"]: int(v) for k, v in _delta(before, after, "edgerank_rank_requests_total").items() if v}
    fallbacks = {dict(k)["reason"]: int(v) for k, v in _delta(before, after, "edgerank_fallbacks_total").items() if v}
    counts = {dict(k)["stage"]: v for k, v in _delta(before, after, "edgerank_stage_seconds_count").items()}
    sums = {dict(k)["stage"]: v for k, v in _delta(before, after, "edgerank_stage_seconds_sum").items()}
    buckets: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for k, v in _delta(before, after, "edgerank_stage_seconds_bucket").items():
        labels = dict(k)
        buckets[labels["stage"]].append((float(labels["le"]), v))
    stages = {}
    for stage, n in sorted(counts.items()):
        if n <= 0:
            continue
        cumulative = sorted(buckets[stage])
        p99 = next((le for le, c in cumulative if c >= 0.99 * n), math.inf)
        stages[stage] = {
            "count": int(n),
            "mean_ms": round(sums.get(stage, 0.0) / n * 1e3, 3),
            "p99_le_ms": None if math.isinf(p99) else round(p99 * 1e3, 3),
        }
    return {"rungs": dict(sorted(rungs.items())), "fallbacks": dict(sorted(fallbacks.items())), "stages": stages}
