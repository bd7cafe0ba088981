"""Fixtures for replication tests: a hub with two region leaves, a signing key, signed releases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from replicator import signing
from tests.replicator.cluster import Cluster, start_cluster
from tests.replicator.harness import release


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield c
    c.stop()


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return signing.keygen(tmp_path_factory.mktemp("keys") / "trainer.key")


@pytest.fixture(scope="session")
def v1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return release(tmp_path_factory.mktemp("v1"), "a", 1, ndcg=0.10)


@pytest.fixture(scope="session")
def v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return release(tmp_path_factory.mktemp("v2"), "b", 2, ndcg=0.105)
