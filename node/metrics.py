"""The node's Prometheus metrics, in one place.

Names follow Prometheus conventions (``_total`` counters, ``_seconds``
histograms, base units). Served on ``Settings.metrics_port`` when it is set.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from node.types import RankResult

_STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)

RANK_REQUESTS = Counter("edgerank_rank_requests_total", "Rank responses by the ladder rung that served them", ["rung"])
RPC_STATUS = Counter("edgerank_rpc_responses_total", "RPCs by method and status code", ["method", "code"])
RANK_SECONDS = Histogram("edgerank_rank_seconds", "Rank latency inside the pipeline", buckets=_STAGE_BUCKETS)
STAGE_SECONDS = Histogram("edgerank_stage_seconds", "Latency of each ranking stage", ["stage"], buckets=_STAGE_BUCKETS)
FALLBACKS = Counter("edgerank_fallbacks_total", "Moves down the ladder, by reason", ["reason"])
FEATURE_LOOKUPS = Counter(
    "edgerank_feature_lookups_total", "Feature store lookups by outcome (hit, miss, stale, error)", ["outcome"]
)
SPOOL_DEPTH = Gauge("edgerank_spool_depth", "Accepted records waiting on disk for NATS", ["kind"])
BUNDLE_INFO = Gauge(
    "edgerank_bundle_info", "The bundle this node serves (value 1)", ["region", "bundle_version", "model_version"]
)


# Labelled children, looked up once (``labels()`` takes a lock and builds a key on every call).
_RUNG_CHILDREN: dict[object, Counter] = {}
_STAGE_CHILDREN: dict[str, Histogram] = {}


def observe_rank(result: RankResult) -> None:
    rung = _RUNG_CHILDREN.get(result.served_by)
    if rung is None:
        rung = _RUNG_CHILDREN.setdefault(result.served_by, RANK_REQUESTS.labels(result.served_by.name))
    rung.inc()
    RANK_SECONDS.observe(result.total_ms / 1000.0)
    for stage, ms in result.stages.items():
        child = _STAGE_CHILDREN.get(stage)
        if child is None:
            child = _STAGE_CHILDREN.setdefault(stage, STAGE_SECONDS.labels(stage))
        child.observe(ms / 1000.0)


def set_bundle(region: str, bundle_version: str, model_version: str) -> None:
    BUNDLE_INFO.clear()
    BUNDLE_INFO.labels(region, bundle_version, model_version).set(1)


def serve(port: int, host: str = "0.0.0.0") -> None:
    """Expose /metrics over HTTP on ``port`` (a daemon thread)."""
    start_http_server(port, addr=host)
