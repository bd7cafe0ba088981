"""``edgerank bench latency`` for people: a table of the runs and a text histogram."""

from __future__ import annotations

import itertools
from typing import Any

from node.loadgen.histogram import LatencyHistogram

BAR_WIDTH = 50
EDGES_MS = (0.0, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 50, 80, 130, 200, 500, 1000, 2000, float("inf"))
ROW_KEYS = ("one_in_flight", "half_max", "eighty_pct_max", "fixed_rate", "fault_run")


def table(result: dict[str, Any]) -> str:
    lines = [
        f"catalog {result.get('catalog_items')} items, {result.get('candidates')} candidates, "
        f"max_rps {result.get('max_rps')} ({result.get('max_rps_per_node_core')} per node core), "
        f"node {result['node']}",
        f"  {'run':15} {'rate':>8} {'achieved':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'max ms':>8} "
        f"{'errors':>6} {'gen cpu':>7} {'node cpu':>8} {'node ms/req':>11}  rungs",
    ]
    for key in ROW_KEYS:
        run = result.get(key)
        if not run:
            continue
        rate = "closed" if run["rate_rps"] is None else f"{run['rate_rps']:.0f}"
        rungs = " ".join(f"{k}={v}" for k, v in run["rungs"].items())
        node_cpu, per_request = run.get("node_cpu_cores"), run.get("node_cpu_ms_per_request")
        lines.append(
            f"  {key:15} {rate:>8} {run['achieved_rps']:9.0f} {run['p50_ms']:8.2f} {run['p99_ms']:8.2f} "
            f"{run['p999_ms']:9.2f} {run['max_ms']:8.2f} {run['errors']:6d} {run['loadgen_cpu_cores']:7.2f} "
            f"{'-' if node_cpu is None else f'{node_cpu:.2f}':>8} "
            f"{'-' if per_request is None else f'{per_request:.3f}':>11}  {rungs}"
        )
    if "search" in result:
        lines.append("  search (rate -> achieved, p99, errors, node CPU per request):")
        for s in result["search"]["steps"]:
            mark = "pass" if s["passed"] else "FAIL"
            per_request = s.get("node_cpu_ms_per_request")
            lines.append(
                f"    {s['rate_rps']:8.0f} -> {s['achieved_rps']:8.0f}/s  p99 {s['p99_ms']:8.2f} ms  "
                f"errors {s['errors']}  {'-' if per_request is None else f'{per_request:.3f} ms'}  {mark}"
            )
    if "fault" in result:
        f = result["fault"]
        lines.append(f"  fault {f['name']}: {f['note']} (node supports it: {f['node_supports']})")
    return "\n".join(lines)


def bars(histogram: LatencyHistogram, title: str) -> str:
    """Counts per latency band, as bars scaled to the fullest band."""
    counts = [histogram.count_between_ms(lo, hi) for lo, hi in itertools.pairwise(EDGES_MS)]
    top = max(counts) or 1
    lines = [f"latency histogram, {title} ({histogram.count} requests)"]
    for (lo, hi), n in zip(itertools.pairwise(EDGES_MS), counts, strict=True):
        if n == 0 and (lo > histogram.max_ms() or hi <= histogram.percentile_ms(0.0)):
            continue
        label = f"{lo:g}-{hi:g} ms" if hi != float("inf") else f">= {lo:g} ms"
        lines.append(f"  {label:>14} {n:8d} {'#' * max(1 if n else 0, round(BAR_WIDTH * n / top))}")
    return "\n".join(lines)
