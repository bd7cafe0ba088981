"""Fixtures for the load generator suite: a small synthetic bundle."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.node.synthetic_bundle import make_bundle


@pytest.fixture(scope="session")
def small_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle root (2000 items, 300 users u000..u299) with LATEST."""
    root = tmp_path_factory.mktemp("loadgen-bundles")
    make_bundle(root, prefix="i", seed=0)
    return root
