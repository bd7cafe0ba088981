from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest

from node.bundle import LoadedBundle
from node.bundle_holder import BundleHolder
from node.errors import NotReady
from node.pipeline import RankingPipeline, request_seed
from node.settings import Settings


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


def test_the_pipeline_keeps_the_stores_of_loaded_bundles_only(bundle_root: Path) -> None:
    # Feature stores hold their bundle: stores kept for a version the holder dropped would keep its
    # mapped (and locked) files.
    first = LoadedBundle.load(bundle_root)
    holder = BundleHolder(first)
    pipeline = RankingPipeline(Settings.load(env={}), holder)
    pipeline.prepare(first)
    gone = weakref.ref(first)
    del first
    for _ in range(2):  # two swaps: ``first`` is neither current nor previous
        bundle = LoadedBundle.load(bundle_root)
        pipeline.prepare(bundle)
        holder.swap(bundle)
    assert len(holder.loaded()) == 2  # current and previous
    enabled = gc.isenabled()
    gc.disable()
    try:
        pipeline.prepare(LoadedBundle.load(bundle_root))  # the next version's stores: the dropped ones go
        assert gone() is None
    finally:
        if enabled:
            gc.enable()
