"""Real Redis and NATS servers for tests; the logic lives in :mod:`node.local_servers`.

Re-exported here so that test code and ``make servers`` keep one import path.
"""

from __future__ import annotations

from node.local_servers import (
    LOOPBACK,
    NatsServer,
    RedisServer,
    Server,
    ServerError,
    find_nats_server,
    find_redis_server,
    free_port,
    start_nats,
    start_redis,
)

__all__ = [
    "LOOPBACK",
    "NatsServer",
    "RedisServer",
    "Server",
    "ServerError",
    "find_nats_server",
    "find_redis_server",
    "free_port",
    "start_nats",
    "start_redis",
]
