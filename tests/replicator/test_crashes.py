"""Processes killed with SIGKILL mid-way: the replicator during a download, the node during a warm-up.

Both run as real ``edgerank`` subprocesses. After a restart the region serves a
verified version, and no partial bundle is ever visible under a version's name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.local_servers import free_port
from replicator import assignment as assign
from replicator.processes import Children, child_env, wait_port
from replicator.region_dir import RegionDir
from tests.replicator.cluster import Cluster, url
from tests.replicator.crash_helpers import assigned, champion, rank_version
from tests.replicator.harness import bundle_contents, promote, publish_bundle, upload, wait_for
from trainer import bundle as bundle_format
from trainer.bundle import MANIFEST

REGION = "us-east"
WITHHELD = "user_emb.npy"  # fetched late (files come in name order); absent from the store at first


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    c = Children(tmp_path)
    yield c
    c.stop()


def test_replicator_killed_mid_download_resumes_and_installs_verified(
    cluster: Cluster, keys: tuple[Path, Path], v1: Path, v2: Path, tmp_path: Path, children: Children
) -> None:
    hub = url(cluster.hub)
    good = publish_bundle(hub, v1, keys[0]).version
    promote(hub, REGION, good)
    manifest, files = bundle_contents(v2, "crash-download")
    withheld = files.pop(WITHHELD)
    version = upload(hub, manifest, files, keys[0])  # the manifest lists WITHHELD; its object is not there yet
    region = RegionDir(tmp_path / "region")
    argv = ["replicate", "--region", REGION, "--dir", str(region.root), "--nats-url", url(cluster.leaves[REGION]),
            "--trusted-key", str(keys[1])]  # fmt: skip
    env = child_env(log_level="INFO")
    first = children.edgerank("replicate-1", argv, env)
    wait_for(lambda: champion(region) == good, what="v1 assigned")

    promote(hub, REGION, version)
    staging = region.staging(version)
    before_withheld = sorted(n for n in manifest["files"] if n < WITHHELD)
    wait_for(lambda: all((staging / n).is_file() for n in before_withheld), what="files before the gap staged")
    wait_for(lambda: f"{version}/{WITHHELD} is not in" in children.log("replicate-1"), what="the gap reached")
    inodes = {n: (staging / n).stat().st_ino for n in before_withheld}
    first.kill()  # SIGKILL: no clean-up of any kind
    first.wait(10)

    # Nothing partial is visible under the version's name; the region still names v1.
    assert not region.path(version).exists()
    assert version not in region.versions()
    assert champion(region) == good
    assert staging.is_dir() and not (staging / WITHHELD).exists()

    upload(hub, manifest, {WITHHELD: withheld}, keys[0])
    children.edgerank("replicate-2", argv, env)
    wait_for(lambda: champion(region) == version, timeout=60, what="the restarted replicator")
    installed = region.path(version)
    bundle_format.verify_files(installed, json.loads((installed / MANIFEST).read_text()))
    assert not staging.exists()
    # Resumed file by file: what was complete before the kill was kept, not fetched again.
    assert {n: (installed / n).stat().st_ino for n in before_withheld} == inodes


def test_node_killed_mid_warm_up_serves_a_verified_version_after_restart(
    v1: Path, v2: Path, tmp_path: Path, children: Children
) -> None:
    region = RegionDir(tmp_path / "region")
    versions = []
    for src in (v1, v2):
        manifest = bundle_format.read_manifest(src)
        os.symlink(src, region.path(manifest["version"]))  # verified bundles, as the replicator installs them
        versions.append(manifest["version"])
    a, b = versions
    region.write_assignment(assign.promote(assign.Assignment(REGION), a))
    port = free_port()
    target = f"127.0.0.1:{port}"
    argv = ["serve", "--follow", "--bundle-dir", str(region.root), "--region", REGION, "--host", "127.0.0.1",
            "--port", str(port)]  # fmt: skip
    # A slow ranker (a drill setting) makes each warm-up take seconds: time enough to kill it mid-way.
    slow = child_env(log_level="INFO", drill_ranker_delay_ms="100", budget_ms="1000")
    node = children.edgerank("node-1", argv, slow)
    wait_port(port, timeout=60, children=children)
    wait_for(lambda: rank_version(target) == a, timeout=60, what="the node serving v1")

    region.write_assignment(assign.promote(assigned(region), b))
    wait_for(lambda: f"loading bundle {b}" in children.log("node-1"), what="the node loading v2")
    assert rank_version(target) == a  # still warming v2 up
    node.kill()
    node.wait(10)
    assert f"serving bundle {b}" not in children.log("node-1")

    children.edgerank("node-2", argv, child_env(log_level="INFO"))
    wait_for(lambda: rank_version(target) == b, timeout=60, what="the restarted node serving v2")

    def reported() -> bool:  # written just after the swap
        reports = [json.loads(p.read_text()) for p in (region.root / "nodes").glob("*.json")]
        return any(r["serving"] == b and r["health"] == "SERVING" for r in reports)

    wait_for(reported, timeout=10, what="the restarted node reporting v2")
