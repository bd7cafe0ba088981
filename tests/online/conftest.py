"""Fixtures for the online suite: a synthetic bundle, real Redis and NATS, a node wired to them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from node.settings import Settings
from tests.node.synthetic_bundle import make_bundle
from tests.servers import NatsServer, RedisServer

_regions = itertools.count()


@pytest.fixture(scope="session")
def online_bundle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("online-bundles")
    make_bundle(root, prefix="i", seed=0)
    return root


@pytest.fixture
def region() -> str:
    """A region of its own per test: its own subjects, consumer and users never collide."""
    return f"t{next(_regions)}"


@pytest.fixture
def settings(
    online_bundle_root: Path, redis_server: RedisServer, nats_server: NatsServer, tmp_path: Path, region: str
) -> Settings:
    return Settings.load(
        {
            "bundle_dir": online_bundle_root,
            "port": 0,
            "workers": 8,
            "region": region,
            "redis_url": redis_server.url,
            "nats_url": nats_server.url,
            "spool_dir": tmp_path / "spool",
            "redis_timeout_ms": 20.0,
            "redis_retry_ms": 100.0,
            "nats_timeout_ms": 500.0,
            "updater_ack_wait_s": 2.0,
        },
        env={},
    )


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis_server.client() as client:
        yield client
