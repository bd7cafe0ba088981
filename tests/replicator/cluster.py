"""The hub and region leaves the replication tests run against (see :mod:`replicator.local_cluster`)."""

from __future__ import annotations

from replicator.local_cluster import REGIONS, Cluster, ConfNatsServer, start_cluster, url

__all__ = ["REGIONS", "Cluster", "ConfNatsServer", "start_cluster", "url"]
