"""Publish once, promote per region, roll back, all under continuous Rank traffic."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from node.cli import main
from replicator import verified
from replicator.replicate import ReplicatorConfig
from tests.replicator.cluster import Cluster, url
from tests.replicator.harness import (
    ReplicatorThread,
    Traffic,
    promote,
    publish_bundle,
    region_node,
    rollback,
    serving,
    wait_for,
)
from trainer.bundle import read_manifest

USERS = [f"u{k:03d}" for k in range(0, 300, 3)] + ["new-user"]


def test_publish_promote_rollback_under_traffic(
    cluster: Cluster, keys: tuple[Path, Path], v1: Path, v2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = url(cluster.hub)
    a = publish_bundle(hub, v1, keys[0]).version
    assert publish_bundle(hub, v1, keys[0]).uploaded_files == 0  # idempotent: nothing uploaded twice
    promote(hub, "eu-west", a)
    promote(hub, "us-east", a)

    reps = {}
    for region in ("eu-west", "us-east"):
        reps[region] = ReplicatorThread(
            ReplicatorConfig(url(cluster.leaves[region]), region, tmp_path / region, keys[1])
        ).start()
    try:
        with (
            region_node(tmp_path / "eu-west", "eu-west") as (eu, _),
            region_node(tmp_path / "us-east", "us-east") as (us, _),
        ):
            wait_for(lambda: serving(eu) == a and serving(us) == a, what="both regions serving v1")
            traffic = {"eu-west": Traffic(eu.target, USERS).start(), "us-east": Traffic(us.target, USERS).start()}

            b = publish_bundle(hub, v2, keys[0]).version
            # Prefetched in both regions as soon as it is published, before any promotion names it.
            wait_for(lambda: all(r.replicator.region.has(b) for r in reps.values()), what="v2 prefetched")
            assert serving(eu) == serving(us) == a
            # Each replicator vouches for what it verified, so that its node does not hash it again.
            for region in reps:
                for version in (a, b):
                    bundle_dir = tmp_path / region / version
                    assert verified.check(bundle_dir, read_manifest(bundle_dir)) is None
            routing = eu.holder.routing
            assert routing is not None
            v1_loaded = routing.champion
            promote(hub, "eu-west", b)
            wait_for(lambda: serving(eu) == b, what="eu-west serving v2")
            wait_for(lambda: traffic["eu-west"].versions.get(b, 0) > 20, what="eu-west responses from v2")
            assert serving(us) == a
            # `edgerank status` tells the truth while the regions diverge: each region's champion, and what its
            # node serves (the node's report, copied by its replicator through the region's leaf to the hub).
            want = {"eu-west": (b, [("node-eu-west", b, "SERVING")]), "us-east": (a, [("node-us-east", a, "SERVING")])}
            seen: list[Any] = []

            def status_shows_divergence() -> bool:
                time.sleep(0.25)
                assert main(["status", "--json", "--nats-url", hub]) == 0
                s = json.loads(capsys.readouterr().out)
                seen[:] = [{r: (s[r]["champion"], [(n["node_id"], n["serving"], n["health"]) for n in s[r]["nodes"]])
                            for r in s}]  # fmt: skip
                return seen[0] == want

            try:
                wait_for(status_shows_divergence, timeout=20, what="edgerank status: eu-west on v2, us-east on v1")
            except AssertionError as e:
                raise AssertionError(f"{e}; last seen {seen}") from None
            assert main(["status", "--nats-url", hub]) == 0
            table = capsys.readouterr().out.splitlines()
            assert any(line.split()[:2] == ["eu-west", b] and "SERVING" in line.split() for line in table), table

            rollback(hub, "eu-west")
            wait_for(lambda: serving(eu) == a, what="eu-west rolled back to v1")
            # Instant: the node serves the v1 it kept loaded, not a fresh load of it (timed in the benchmark).
            rolled_back = eu.holder.routing
            assert rolled_back is not None and rolled_back.champion is v1_loaded
            n = traffic["eu-west"].versions.get(a, 0)
            wait_for(lambda: traffic["eu-west"].versions.get(a, 0) > n + 20, what="eu-west responses after rollback")
            for t in traffic.values():
                t.finish()
    finally:
        for r in reps.values():
            r.stop()

    for region, t in traffic.items():
        assert not t.errors, (region, t.errors[:3])
        assert t.count > 100, (region, t.count)
    assert set(traffic["us-east"].versions) == {a}, traffic["us-east"].versions
    assert set(traffic["eu-west"].versions) == {a, b}, traffic["eu-west"].versions
    assert all(r.error is None for r in reps.values()), [r.error for r in reps.values()]
