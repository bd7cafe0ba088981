"""The freshness benchmark: from Events.Log returning to the first Rank that reflects the event.

A node (in this process) and the feature updater (``edgerank features``, its
own process, as in production) run against Redis and NATS: the given URLs, or
throwaway servers on free loopback ports (:mod:`node.local_servers`). For each
event: rank a user, log a click on the top item, then rank again until that
item is gone (the user's online state now has it as seen). The time from
``Log`` returning to that response is the freshness of one event.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from node.conditions import machine
from node.gen.edgerank.v1 import events_pb2, events_pb2_grpc, ranker_pb2, ranker_pb2_grpc
from node.local_servers import Server, start_nats, start_redis
from node.server import Node
from node.settings import Settings

# A fixed request time: the ranking changes only when the features do.
NOW_MS = 1_900_000_000_000
REFLECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class FreshnessBench:
    bundle_dir: Path
    events: int = 200
    redis_url: str = ""
    nats_url: str = ""


@contextlib.contextmanager
def _servers(bench: FreshnessBench) -> Iterator[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="edgerank-freshness-") as tmp:
        started: list[Server] = []
        try:
            redis_url, nats_url = bench.redis_url, bench.nats_url
            if not redis_url:
                started.append(start_redis(Path(tmp)))
                redis_url = started[-1].url
            if not nats_url:
                started.append(start_nats(Path(tmp)))
                nats_url = started[-1].url
            yield redis_url, nats_url
        finally:
            for server in started:
                server.stop()


def _updater(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "EDGERANK_REDIS_URL": settings.redis_url,
        "EDGERANK_NATS_URL": settings.nats_url,
        "EDGERANK_BUNDLE_DIR": str(settings.bundle_dir),
        "EDGERANK_REGION": settings.region,
    }
    with log_path.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", "import sys; from node.cli import main; sys.exit(main(['features']))"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def run(bench: FreshnessBench) -> dict[str, Any]:
    conditions = machine()
    with _servers(bench) as (redis_url, nats_url), tempfile.TemporaryDirectory(prefix="edgerank-spool-") as spool:
        region = f"bench{os.getpid()}"
        settings = Settings.load(
            {
                "bundle_dir": bench.bundle_dir,
                "port": 0,
                "region": region,
                "redis_url": redis_url,
                "nats_url": nats_url,
                "spool_dir": Path(spool),
                "log_level": "WARNING",
            }
        )
        updater = _updater(settings, Path(spool) / "updater.log")
        try:
            with Node(settings).start() as node, grpc.insecure_channel(node.target) as channel:
                assert node.feedback is not None
                if not node.feedback.link.wait_connected(15):
                    raise RuntimeError(f"cannot reach NATS at {nats_url}")
                lags = _measure(node, channel, bench.events, region)
        finally:
            updater.terminate()
            updater.wait(10)
    ms = np.array(lags) * 1e3
    return {
        "events": len(lags),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
        "servers": "given" if bench.redis_url and bench.nats_url else "throwaway, loopback",
        "machine": conditions,
    }


def _measure(node: Node, channel: grpc.Channel, n_events: int, region: str) -> list[float]:
    ranker = ranker_pb2_grpc.RankerStub(channel)
    events = events_pb2_grpc.EventsStub(channel)
    users = [str(u) for u in node.holder.snapshot().user_ids[:50].tolist()]

    def top(user: str) -> str:
        request = ranker_pb2.RankRequest(user_id=user, num_results=5, context=ranker_pb2.Context(timestamp_ms=NOW_MS))
        return str(ranker.Rank(request, timeout=5).items[0].item_id)

    lags = []
    # The first event also waits for the updater to come up; it is not counted.
    for k in range(n_events + 1):
        user = users[k % len(users)]
        item = top(user)
        click = events_pb2.Event(
            event_id=f"{region}-{k}",
            user_id=user,
            item_id=item,
            type=events_pb2.EVENT_TYPE_CLICK,
            timestamp_ms=int(time.time() * 1000),
        )
        events.Log(events_pb2.LogRequest(events=[click]), timeout=5)
        logged = time.perf_counter()
        deadline = time.monotonic() + (60.0 if k == 0 else REFLECT_TIMEOUT_S)
        while top(user) == item:
            if time.monotonic() > deadline:
                raise RuntimeError(f"event {k} was not reflected within {REFLECT_TIMEOUT_S} s")
        if k:
            lags.append(time.perf_counter() - logged)
    return lags
