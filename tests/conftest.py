"""Fixtures shared by every suite. Server logic lives in tests/servers.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.servers import NatsServer, RedisServer, start_nats, start_redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real Redis on a free loopback port; ``.url``, ``.stop()``, ``.start()``."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A real NATS with JetStream on a free loopback port; ``.url``, ``.stop()``, ``.start()``."""
    server = start_nats(tmp_path_factory.mktemp("nats"))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _root_logging() -> Iterator[None]:
    """Put the root logger back after each test: a command run in-process (``node.cli.main``) points it at
    that test's captured stderr, which is closed once the test ends."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
