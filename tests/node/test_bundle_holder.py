from __future__ import annotations

from pathlib import Path

import pytest

from node.bundle import LoadedBundle
from node.bundle_holder import BundleHolder
from node.errors import NotReady
from node.pipeline import request_seed


def test_empty_holder_is_not_ready() -> None:
    holder = BundleHolder()
    assert not holder.ready
    with pytest.raises(NotReady):
        holder.snapshot()
    with pytest.raises(NotReady):
        holder.rollback()


def test_swap_keeps_previous_for_rollback(bundle_root: Path, second_bundle: Path) -> None:
    a, b = LoadedBundle.load(bundle_root), LoadedBundle.load(second_bundle)
    holder = BundleHolder()
    assert holder.swap(a) is None
    assert holder.swap(b) is a
    assert holder.snapshot() is b and holder.previous is a
    assert holder.rollback() is a
    assert holder.snapshot() is a and holder.previous is b


def test_request_seed_is_stable() -> None:
    assert request_seed("r-1", 1.5) == request_seed("r-1", 1.5)
    assert request_seed("r-1", 1.5) != request_seed("r-2", 1.5)
    assert 0 <= request_seed("x", 0.0) < 2**63
