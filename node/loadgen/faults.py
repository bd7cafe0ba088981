"""Faults injected while the load runs (``edgerank bench latency --fault NAME``).

* ``ranker-slow``: the node starts with ``EDGERANK_DRILL_RANKER_DELAY_MS``
  (the ranker stage waits that long; the pipeline's watchdog should move the
  request to RETRIEVAL_ORDER within budget).
* ``index-down``: the node starts with ``EDGERANK_DRILL_INDEX_DOWN=true``
  (ANN retrieval raises; POPULARITY serves).
* ``redis-slow`` / ``redis-down``: a real Redis (``node.local_servers``)
  behind a :class:`~node.loadgen.proxy.DelayProxy`; the node starts with
  ``EDGERANK_REDIS_URL`` pointing at the proxy. Once the node is warm the
  proxy adds ``redis_delay_ms`` to every round trip, or goes down. Redis
  holds no features for the benchmark's users, so a healthy read misses and
  the batch features serve (FULL); what the drill shows is the cost of the
  round trip and the ladder's reaction when it is slow or gone.

Settings-based drills need a node this benchmark starts itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from node.settings import Settings

FAULTS = ("redis-down", "redis-slow", "ranker-slow", "index-down")


@dataclass
class FaultPlan:
    name: str
    node_env: dict[str, str]
    note: str
    # Whether this node's Settings has the hook the fault relies on.
    node_supports: bool
    activate: Callable[[], None] = field(default=lambda: None)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "node_env": self.node_env, "node_supports": self.node_supports, "note": self.note}


def _has_setting(name: str) -> bool:
    return name in {f.name for f in dataclasses.fields(Settings)}


@contextmanager
def injected(
    name: str, workdir: Path, ranker_delay_ms: float = 80.0, redis_delay_ms: float = 20.0
) -> Iterator[FaultPlan]:
    """The plan for fault ``name``; servers it needs run until the block ends."""
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r}; one of {', '.join(FAULTS)}")
    if name == "ranker-slow":
        yield FaultPlan(
            name,
            {"EDGERANK_DRILL_RANKER_DELAY_MS": f"{ranker_delay_ms:g}"},
            f"the ranker stage waits {ranker_delay_ms:g} ms per request",
            _has_setting("drill_ranker_delay_ms"),
        )
        return
    if name == "index-down":
        yield FaultPlan(
            name,
            {"EDGERANK_DRILL_INDEX_DOWN": "true"},
            "ANN retrieval raises on every request",
            _has_setting("drill_index_down"),
        )
        return
    from node.loadgen.proxy import DelayProxy
    from node.local_servers import start_redis

    with ExitStack() as stack:
        redis_server = start_redis(workdir)
        stack.callback(redis_server.stop)
        proxy = stack.enter_context(DelayProxy("127.0.0.1", redis_server.port))
        if name == "redis-slow":
            note = f"every Redis round trip takes {redis_delay_ms:g} ms longer once the node is warm"

            def activate() -> None:
                proxy.set_delay(redis_delay_ms)

        else:
            note = "Redis becomes unreachable (connections closed, new ones refused) once the node is warm"

            def activate() -> None:
                proxy.set_down(True)

        note += "; meaningful only with a node that reads EDGERANK_REDIS_URL"
        yield FaultPlan(
            name,
            {"EDGERANK_REDIS_URL": f"redis://{proxy.url_host_port}/0"},
            note,
            _has_setting("redis_url"),
            activate,
        )
