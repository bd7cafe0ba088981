"""Command-line flags that map onto Settings fields."""

from __future__ import annotations

import argparse
from typing import Any

# (flag, settings field, help)
NODE_FLAGS = (
    (
        "--bundle-dir",
        "bundle_dir",
        "bundle root (with LATEST) or one bundle directory [EDGERANK_BUNDLE_DIR]",
    ),
    ("--host", "host", "address to bind [EDGERANK_HOST]"),
    ("--port", "port", "port to bind, 0 for a free one [EDGERANK_PORT]"),
    ("--workers", "workers", "threads per process for calls that may block on Redis or NATS [EDGERANK_WORKERS]"),
    ("--processes", "processes", "server processes sharing the port [EDGERANK_PROCESSES]"),
    ("--budget-ms", "budget_ms", "latency budget per request, ms [EDGERANK_BUDGET_MS]"),
    (
        "--metrics-port",
        "metrics_port",
        "serve Prometheus /metrics on this port, 0 for none (all processes on one port) [EDGERANK_METRICS_PORT]",
    ),
    (
        "--max-per-genre",
        "max_per_genre",
        "re-ranking cap per primary genre [EDGERANK_MAX_PER_GENRE]",
    ),
    ("--ivf-nprobe", "ivf_nprobe", "IVF lists the user retrieval scans [EDGERANK_IVF_NPROBE]"),
    (
        "--lock-bundle",
        "lock_bundle",
        "lock the served bundles' mapped files in memory, true or false [EDGERANK_LOCK_BUNDLE]",
    ),
    (
        "--lock-code",
        "lock_code",
        "lock the node's code (interpreter, libraries) in memory, true or false (default) [EDGERANK_LOCK_CODE]",
    ),
    (
        "--warm-up-queries",
        "warm_up_queries",
        "recently served queries a new bundle answers before it serves; 0 (default): none [EDGERANK_WARM_UP_QUERIES]",
    ),
    ("--epsilon", "epsilon", "exploration rate in [0, 1] [EDGERANK_EPSILON]"),
    ("--region", "region", "this node's region [EDGERANK_REGION]"),
    ("--log-level", "log_level", "DEBUG, INFO, WARNING or ERROR [EDGERANK_LOG_LEVEL]"),
    ("--redis-url", "redis_url", "online features in this Redis; none: the bundle's [EDGERANK_REDIS_URL]"),
    ("--nats-url", "nats_url", "events and exposures to this NATS JetStream [EDGERANK_NATS_URL]"),
    ("--spool-dir", "spool_dir", "where events and exposures wait while NATS is down [EDGERANK_SPOOL_DIR]"),
)


def add_node_flags(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    """Flags are kept as strings; Settings.load parses them and names the flag on error."""
    for flag, name, help_text in NODE_FLAGS:
        if only is None or name in only:
            parser.add_argument(flag, dest=name, default=None, metavar=name.upper(), help=help_text)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for _, name, _ in NODE_FLAGS if getattr(args, name, None) is not None}
