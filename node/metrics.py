"""The node's Prometheus metrics, in one place.

Names follow Prometheus conventions (``_total`` counters, ``_seconds``
histograms, base units). Served on ``Settings.metrics_port`` when it is set:
by the node itself when it is one process, by the supervisor for all of
them when it is several (``processes`` > 1): then each process writes its
values to files in ``PROMETHEUS_MULTIPROC_DIR``, which the supervisor sets
before it starts them, and the supervisor serves their sum
(:func:`serve_processes`, prometheus_client's multiprocess mode).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, start_http_server

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
SPOOL_DEPTH = Gauge(
    "edgerank_spool_depth", "Accepted records waiting on disk for NATS", ["kind"], multiprocess_mode="livesum"
)
BUNDLE_INFO = Gauge(
    "edgerank_bundle_info",
    "The bundle this node serves (1; 0 for a version it served before)",
    ["region", "bundle_version", "model_version"],
    multiprocess_mode="livemax",
)
_served: list[Gauge] = []  # the BUNDLE_INFO child now at 1


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
    """The served version's series at 1, the one served before at 0 (set, not removed: in multiprocess
    mode a process's series stay in its file)."""
    child = BUNDLE_INFO.labels(region, bundle_version, model_version)
    for old in _served:
        if old is not child:
            old.set(0)
    child.set(1)
    _served[:] = [child]


def serve(port: int, host: str = "0.0.0.0") -> None:
    """Expose this process's /metrics over HTTP on ``port`` (a daemon thread)."""
    start_http_server(port, addr=host)


def serve_processes(port: int, host: str, directory: str) -> None:
    """Expose /metrics on ``port`` for the processes that write to ``directory`` (their sum; live gauges)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    start_http_server(port, addr=host, registry=registry)


def process_exited(pid: int, directory: str) -> None:
    """Drop a dead process's live gauges (its counters and histograms keep counting in the sum)."""
    multiprocess.mark_process_dead(pid, path=directory)
