"""The asyncio server: Rank runs on the loop, unless the node has a feature store that may block."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from node.bundle import LoadedBundle
from node.feature_store import EmbeddedFeatureStore
from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc
from node.server import Node
from node.types import UserState
from tests.node.conftest import node_settings

SLOW_USER = "u002"
WAIT_S = 10.0


class BlockingStore:
    """The bundle's features, except that a read for SLOW_USER waits until released (a Redis that hangs)."""

    def __init__(self, bundle: LoadedBundle, entered: threading.Event, release: threading.Event):
        self.inner, self.entered, self.release = EmbeddedFeatureStore(bundle), entered, release

    def get(self, user_id: str, session_id: str = "", now: float | None = None) -> UserState | None:
        if user_id == SLOW_USER:
            self.entered.set()
            self.release.wait(WAIT_S)
        return self.inner.get(user_id, session_id, now)


@pytest.fixture
def gates() -> Iterator[tuple[threading.Event, threading.Event]]:
    entered, release = threading.Event(), threading.Event()
    yield entered, release
    release.set()


def blocking_node(bundle_root: Path, gates: tuple[threading.Event, threading.Event]) -> Node:
    """A node (two threads) whose feature store blocks on ``SLOW_USER`` until the release gate opens."""
    entered, release = gates
    return Node(
        node_settings(bundle_root, workers=2),
        feature_store_factory=lambda bundle: BlockingStore(bundle, entered, release),
    )


def request(user: str) -> ranker_pb2.RankRequest:
    return ranker_pb2.RankRequest(user_id=user, num_results=5)


def test_a_rank_waiting_on_the_feature_store_does_not_hold_up_the_next(
    bundle_root: Path, gates: tuple[threading.Event, threading.Event]
) -> None:
    entered, release = gates
    with (
        blocking_node(bundle_root, gates).start() as node,
        grpc.insecure_channel(node.target) as channel,
    ):
        stub = ranker_pb2_grpc.RankerStub(channel)
        slow = stub.Rank.future(request(SLOW_USER), timeout=WAIT_S)
        assert entered.wait(WAIT_S)
        # On the loop, this one would wait behind the slow read and miss its deadline.
        fast = stub.Rank(request("u001"), timeout=2.0)
        assert fast.served_by == ranker_pb2.SERVED_BY_FULL and len(fast.items) == 5
        assert not slow.done()
        release.set()
        assert len(slow.result(timeout=WAIT_S).items) == 5


def test_a_stop_lets_the_rank_in_flight_finish(
    bundle_root: Path, gates: tuple[threading.Event, threading.Event]
) -> None:
    entered, release = gates
    node = blocking_node(bundle_root, gates).start()
    with grpc.insecure_channel(node.target) as channel:
        slow = ranker_pb2_grpc.RankerStub(channel).Rank.future(request(SLOW_USER), timeout=WAIT_S)
        assert entered.wait(WAIT_S)
        stopper = threading.Thread(target=node.stop, kwargs={"grace": WAIT_S})
        stopper.start()
        release.set()
        response = slow.result(timeout=WAIT_S)
        stopper.join(WAIT_S)
    assert not stopper.is_alive()
    assert response.served_by == ranker_pb2.SERVED_BY_FULL and len(response.items) == 5


def test_the_embedded_store_ranks_on_the_loop_thread(
    node: Node, channel: grpc.Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an online store nothing on the Rank path blocks: no hand-off to a pool thread per call."""
    threads: list[str] = []
    rank = node.pipeline.rank

    def recording(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread().name)
        return rank(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(node.pipeline, "rank", recording)
    ranker_pb2_grpc.RankerStub(channel).Rank(request("u001"), timeout=10)
    assert threads == ["grpc-aio"]
