"""Fixtures for the node suite: synthetic bundles and in-process nodes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from node.server import Node
from node.settings import Settings
from tests.node.synthetic_bundle import make_bundle


@pytest.fixture(scope="session")
def bundle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle root with one bundle (item ids ``i<row>``), LATEST pointing at it."""
    root = tmp_path_factory.mktemp("bundles")
    make_bundle(root, prefix="i", seed=0)
    return root


@pytest.fixture(scope="session")
def second_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another bundle directory (item ids ``j<row>``), for swaps."""
    return make_bundle(tmp_path_factory.mktemp("bundles-b"), prefix="j", seed=1)


def node_settings(bundle_dir: Path, **overrides: object) -> Settings:
    return Settings.load({"bundle_dir": bundle_dir, "port": 0, "workers": 8, **overrides}, env={})


@pytest.fixture(scope="module")
def node(bundle_root: Path) -> Iterator[Node]:
    """A started, ready node on a free port, shared by a test module (do not swap it)."""
    with Node(node_settings(bundle_root)).start() as n:
        yield n


@pytest.fixture(scope="module")
def channel(node: Node) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(node.target) as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield ch
