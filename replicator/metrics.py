"""Prometheus counters of replication and hot swaps (default registry; scrape or read in tests)."""

from __future__ import annotations

from prometheus_client import Counter

REFUSED = Counter(
    "edgerank_replicator_refused_bundles",
    "Bundles the replicator refused, by reason (signature, checksum, paths, transfer, disk)",
    ["reason"],
)
FETCHED = Counter("edgerank_replicator_fetched_bundles", "Bundles downloaded, verified and published locally")
TRANSFER_ERRORS = Counter("edgerank_replicator_transfer_errors", "Failed or interrupted transfers (retried)")
HUB_WRITE_ERRORS = Counter("edgerank_replicator_hub_write_errors", "Writes to the hub that failed (node reports)")
SWAPS = Counter("edgerank_node_swaps", "Assignments the node applied")
SWAP_FAILURES = Counter("edgerank_node_swap_failures", "Bundles the node refused to load or warm, kept serving")


def value(counter: Counter, **labels: str) -> float:
    """The current value of a counter (for tests and status lines)."""
    c = counter.labels(**labels) if labels else counter
    return float(c._value.get())
