"""A response is never built from two bundle versions, even while bundles swap."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import grpc
import pytest

from node import prefault
from node.bundle import LoadedBundle
from node.bundle_holder import Routing
from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc
from node.server import Node
from tests.node.conftest import node_settings


def test_swap_during_traffic(bundle_root: Path, second_bundle: Path) -> None:
    with Node(node_settings(bundle_root)).start() as node:
        a = node.holder.snapshot()
        prefixes = {a.version: "i"}
        responses: list[ranker_pb2.RankResponse] = []
        errors: list[BaseException] = []
        stop = threading.Event()

        def traffic(users: list[str]) -> None:
            try:
                with grpc.insecure_channel(node.target) as channel:
                    stub = ranker_pb2_grpc.RankerStub(channel)
                    while not stop.is_set():
                        for user in users:
                            request = ranker_pb2.RankRequest(user_id=user, num_results=20)
                            responses.append(stub.Rank(request, timeout=10))
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [
            threading.Thread(
                target=traffic,
                args=([f"u{k:03d}" for k in range(j, 300, 7)] + ["new-user"],),
            )
            for j in range(4)
        ]
        for t in threads:
            t.start()
        b = node.load_bundle(second_bundle)  # load, verify, warm beside a, then swap
        prefixes[b.version] = "j"
        other: LoadedBundle = b
        for _ in range(30):
            other = a if node.holder.snapshot() is b else b
            node.holder.swap(other)
            threading.Event().wait(0.01)
        stop.set()
        for t in threads:
            t.join(timeout=30)

        assert not errors, errors
        versions = {r.bundle_version for r in responses}
        assert versions == set(prefixes), versions
        for r in responses:
            prefix = prefixes[r.bundle_version]
            assert r.items and all(i.item_id.startswith(prefix) for i in r.items), r


def test_a_prepared_bundle_is_frozen_out_of_the_collector(bundle_root: Path, second_bundle: Path) -> None:
    # A full collection walks every tracked object with the GIL held (25-50 ms in a serving node); the
    # objects alive once a bundle is ready live as long as it, so they are frozen out of the walk.
    gc.unfreeze()
    try:
        with Node(node_settings(bundle_root)).start() as node:
            at_start = gc.get_freeze_count()
            assert at_start > 1000  # the modules, the first bundle
            prepared = node.prepare_bundle(second_bundle)
            assert gc.get_freeze_count() > at_start
            node.serve_routing(Routing(prepared))
            assert node.holder.snapshot() is prepared
    finally:
        gc.unfreeze()


def test_the_code_is_locked_after_each_load_when_the_settings_ask(
    bundle_root: Path, second_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def lock_code() -> int:
        calls.append("locked")
        return 0

    monkeypatch.setattr(prefault, "lock_code", lock_code)
    with Node(node_settings(bundle_root)).start() as node:  # off by default
        node.prepare_bundle(second_bundle)
        assert calls == []
    with Node(node_settings(bundle_root, lock_code=True)).start() as node:
        assert calls == ["locked"]  # the first bundle's load
        node.prepare_bundle(second_bundle)
        assert calls == ["locked", "locked"]
