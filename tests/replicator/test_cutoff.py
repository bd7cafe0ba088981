"""The hub goes away: promotions fail cleanly, the region keeps serving, and can roll back locally."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.cli import main
from replicator.replicate import ReplicatorConfig
from tests.replicator.cluster import Cluster, url
from tests.replicator.harness import ReplicatorThread, Traffic, promote, publish_bundle, region_node, serving, wait_for

REGION = "eu-west"


@pytest.fixture(scope="module")
def region(
    cluster: Cluster, keys: tuple[Path, Path], v1: Path, v2: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, ReplicatorThread, str, str]]:
    hub = url(cluster.hub)
    a = publish_bundle(hub, v1, keys[0]).version
    b = publish_bundle(hub, v2, keys[0]).version
    promote(hub, REGION, a)
    directory = tmp_path_factory.mktemp("eu")
    rep = ReplicatorThread(
        ReplicatorConfig(url(cluster.leaves[REGION]), REGION, directory, keys[1], retry_s=0.2)
    ).start()
    with region_node(directory, REGION) as (node, _):
        wait_for(lambda: serving(node) == a, what="eu-west serving v1")
        yield node, rep, a, b
    rep.stop()


def test_hub_down_during_promotion(cluster: Cluster, region: Any, capsys: pytest.CaptureFixture[str]) -> None:
    node, _rep, a, b = region
    traffic = Traffic(node.target, [f"u{k:03d}" for k in range(0, 300, 5)]).start()
    cluster.hub.kill()
    try:
        code = main(["promote", "--region", REGION, b, "--nats-url", url(cluster.hub)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and err[0].startswith("edgerank: error:"), (code, err)
        n = traffic.count
        wait_for(lambda: traffic.count > n + 50, what="traffic while the hub is down")
        assert serving(node) == a
    finally:
        cluster.hub.start()
    promote(url(cluster.hub), REGION, b)
    wait_for(lambda: serving(node) == b, what="v2 once the hub is back")
    traffic.finish()
    assert not traffic.errors, traffic.errors[:3]
    assert set(traffic.versions) == {a, b}


def test_rollback_from_local_mirror_while_cut_off(
    cluster: Cluster, region: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    node, rep, a, b = region
    promote(url(cluster.hub), REGION, b)
    wait_for(lambda: serving(node) == b, what="eu-west on v2")
    cluster.hub.stop()  # the leaf is cut off from the hub
    try:
        code = main(["rollback", "--region", REGION, "--local", "--nats-url", url(cluster.leaves[REGION])])
        out = capsys.readouterr()
        assert code == 0, out.err
        assert "override" in out.out and f"champion {a}" in out.out, out.out
        wait_for(lambda: serving(node) == a, what="rolled back from the local mirror")
    finally:
        cluster.hub.start()
    # The override holds when the hub is back, until the hub writes something newer.
    rep.replicator.reconciled.clear()
    wait_for(lambda: rep.replicator.reconciled.is_set(), what="a reconcile after the hub is back")
    assert serving(node) == a
    promote(url(cluster.hub), REGION, a)  # the hub's champion is still b: two writes to get past the override
    promote(url(cluster.hub), REGION, b)
    wait_for(lambda: serving(node) == b, what="the hub's newer promotion wins over the override")
