"""``edgerank canary`` under traffic: arms split near the percentage, sticky per user, versions match arms."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from node.cli import main
from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc
from replicator.assignment import ARM_CHALLENGER, ARM_CHAMPION
from replicator.replicate import ReplicatorConfig
from tests.replicator.cluster import Cluster, url
from tests.replicator.harness import ReplicatorThread, Traffic, promote, publish_bundle, region_node, wait_for

REGION = "eu-west"
USERS = [f"canary-user-{k}" for k in range(800)] + [f"u{k:03d}" for k in range(0, 300, 3)]


def arm_checker(versions: dict[str, str]) -> Callable[[ranker_pb2.RankResponse], None]:
    def check(r: ranker_pb2.RankResponse) -> None:
        assert r.experiment_arm in versions, r.experiment_arm
        assert r.bundle_version == versions[r.experiment_arm], (r.experiment_arm, r.bundle_version)

    return check


def test_canary_splits_users_by_arm_under_traffic(
    cluster: Cluster, keys: tuple[Path, Path], v1: Path, v2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = url(cluster.hub)
    a = publish_bundle(hub, v1, keys[0]).version
    b = publish_bundle(hub, v2, keys[0]).version
    promote(hub, REGION, a)
    rep = ReplicatorThread(ReplicatorConfig(url(cluster.leaves[REGION]), REGION, tmp_path, keys[1])).start()
    try:
        with region_node(tmp_path, REGION) as (node, _):
            wait_for(lambda: node.holder.routing and node.holder.routing.champion.version == a, what="v1 served")
            versions = {ARM_CHAMPION: a, ARM_CHALLENGER: b}
            traffic = Traffic(node.target, USERS[::7], check=arm_checker(versions)).start()

            assert main(["canary", "--region", REGION, b, "--percent", "20", "--nats-url", hub]) == 0, (
                capsys.readouterr()
            )
            wait_for(lambda: traffic.versions.get(b, 0) > 10, what="challenger responses in the traffic")

            with grpc.insecure_channel(node.target) as channel:
                stub = ranker_pb2_grpc.RankerStub(channel)

                def arm(user: str) -> tuple[str, str]:
                    r = stub.Rank(ranker_pb2.RankRequest(user_id=user, num_results=5), timeout=10)
                    return r.experiment_arm, r.bundle_version

                with ThreadPoolExecutor(4) as pool:
                    first = list(pool.map(arm, USERS))
                    second = list(pool.map(arm, reversed(USERS)))[::-1]
            traffic.finish()
    finally:
        rep.stop()

    assert first == second  # each user always gets the same arm (and so the same version)
    assert {arm_ for arm_, _ in first} == {ARM_CHAMPION, ARM_CHALLENGER}
    assert all(version == versions[arm_] for arm_, version in first)
    share = sum(arm_ == ARM_CHALLENGER for arm_, _ in first) / len(USERS)
    assert 0.16 <= share <= 0.24, share
    assert not traffic.errors, traffic.errors[:3]
    assert set(traffic.arms) == {ARM_CHAMPION, ARM_CHALLENGER}, traffic.arms
    assert rep.error is None
