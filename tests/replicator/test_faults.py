"""Faults during replication: each ends with the region serving its last good version, logged and counted."""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from node.assignment import AssignmentWatcher
from node.server import Node
from replicator import metrics
from replicator.replicate import ReplicatorConfig
from tests.replicator.cluster import Cluster, url
from tests.replicator.harness import (
    ReplicatorThread,
    bundle_contents,
    promote,
    publish_bundle,
    region_node,
    serving,
    upload,
    wait_for,
)

REGION = "eu-west"


class Disk:
    """A writer hook that fails with ENOSPC once ``budget`` bytes are written, while armed."""

    def __init__(self) -> None:
        self.budget: int | None = None

    def write(self, f: Any, data: bytes) -> None:
        if self.budget is not None:
            if self.budget < len(data):
                raise OSError(errno.ENOSPC, "No space left on device")
            self.budget -= len(data)
        f.write(data)


@pytest.fixture(scope="module")
def disk() -> Disk:
    return Disk()


@pytest.fixture(scope="module")
def region(
    cluster: Cluster, keys: tuple[Path, Path], v1: Path, disk: Disk, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Node, AssignmentWatcher, ReplicatorThread, str]]:
    """eu-west serving v1 (its last good version), with a replicator and a node."""
    hub = url(cluster.hub)
    good = publish_bundle(hub, v1, keys[0]).version
    promote(hub, REGION, good)
    directory = tmp_path_factory.mktemp("eu")
    rep = ReplicatorThread(
        ReplicatorConfig(url(cluster.leaves[REGION]), REGION, directory, keys[1], retry_s=0.2, write=disk.write)
    ).start()
    with region_node(directory, REGION) as (node, watcher):
        wait_for(lambda: serving(node) == good, what="eu-west serving v1")
        yield node, watcher, rep, good
    rep.stop()


def refused_after_promotion(cluster: Cluster, region: Any, publish: Callable[[], str], reason: str) -> str:
    """``publish()`` puts a bad version in the hub's store; it is refused (when prefetched, or promoted). Returns it."""
    node, _watcher, rep, good = region
    before = metrics.value(metrics.REFUSED, reason="verification")
    version = publish()
    promote(url(cluster.hub), REGION, version)
    why = wait_for(lambda: rep.replicator.refused.get(version), what=f"{version} refused")
    assert reason in why, why
    assert metrics.value(metrics.REFUSED, reason="verification") == before + 1
    wait_for(
        lambda: (a := rep.replicator.region.read_assignment()) is not None and a.extra.get("refused"),
        what="assignment noted",
    )
    assert (a := rep.replicator.region.read_assignment()) is not None and a.champion == good
    assert serving(node) == good
    assert not (rep.replicator.region.root / version).exists()
    assert not rep.replicator.region.staging(version).exists()
    return version


def test_unsigned_manifest(cluster: Cluster, region: Any, v2: Path) -> None:
    manifest, files = bundle_contents(v2, "bad-unsigned")
    refused_after_promotion(cluster, region, lambda: upload(url(cluster.hub), manifest, files, None), "not signed")


def test_tampered_manifest(cluster: Cluster, region: Any, v2: Path, keys: tuple[Path, Path]) -> None:
    import json

    from replicator import signing

    manifest, files = bundle_contents(v2, "bad-tampered")
    signed = signing.sign_manifest(manifest, signing.load_private(keys[0]))
    signed["model_version"] = "evil"  # changed after signing
    assert json.dumps(signed)  # uploaded as is
    refused_after_promotion(
        cluster, region, lambda: upload(url(cluster.hub), signed, files, None), "signature does not match"
    )


def test_other_key(cluster: Cluster, region: Any, v2: Path, tmp_path: Path) -> None:
    from replicator import signing

    other, _ = signing.keygen(tmp_path / "other.key")
    manifest, files = bundle_contents(v2, "bad-other-key")
    refused_after_promotion(cluster, region, lambda: upload(url(cluster.hub), manifest, files, other), "trusted key is")


def test_path_outside_bundle(cluster: Cluster, region: Any, v2: Path, keys: tuple[Path, Path]) -> None:
    manifest, files = bundle_contents(v2, "bad-path")
    evil = b"x"
    manifest["files"]["../../x"] = {"sha256": hashlib.sha256(evil).hexdigest(), "size": 1}
    files["../../x"] = evil
    refused_after_promotion(
        cluster, region, lambda: upload(url(cluster.hub), manifest, files, keys[0]), "outside the bundle"
    )
    assert not (region[2].replicator.region.root.parent / "x").exists()


def test_corrupted_chunk(cluster: Cluster, region: Any, v2: Path, keys: tuple[Path, Path]) -> None:
    manifest, files = bundle_contents(v2, "bad-chunk")
    data = bytearray(files["item_rows.npy"])
    data[len(data) // 2] ^= 0xFF
    files["item_rows.npy"] = bytes(data)  # the manifest keeps the true sha256
    refused_after_promotion(cluster, region, lambda: upload(url(cluster.hub), manifest, files, keys[0]), "sha256")


def test_truncated_file(cluster: Cluster, region: Any, v2: Path, keys: tuple[Path, Path]) -> None:
    manifest, files = bundle_contents(v2, "bad-truncated")
    files["user_emb.npy"] = files["user_emb.npy"][:-100]
    refused_after_promotion(
        cluster, region, lambda: upload(url(cluster.hub), manifest, files, keys[0]), "bytes, the manifest"
    )


def test_arrays_that_fail_a_content_check(cluster: Cluster, region: Any, v2: Path, keys: tuple[Path, Path]) -> None:
    """Signed and intact, but its item ids are not in their stored order: the replicator's content checks
    (node.bundle.check_contents) refuse it before it is installed, so no node ever loads it."""
    import io

    import numpy as np

    manifest, files = bundle_contents(v2, "bad-id-order")
    order = np.load(io.BytesIO(files["item_id_order.npy"]))
    out = io.BytesIO()
    np.save(out, order[::-1].copy())
    files["item_id_order.npy"] = out.getvalue()
    data = files["item_id_order.npy"]
    manifest["files"]["item_id_order.npy"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    version = refused_after_promotion(
        cluster,
        region,
        lambda: upload(url(cluster.hub), manifest, files, keys[0]),
        "item ids: the stored order does not sort them",
    )
    assert version not in region[1].failed  # refused by the replicator, not by a node's load


def test_disk_full_while_staging(cluster: Cluster, region: Any, v2: Path, keys: tuple[Path, Path], disk: Disk) -> None:
    node, _watcher, rep, good = region
    manifest, files = bundle_contents(v2, "disk-full")
    before = metrics.value(metrics.REFUSED, reason="disk")
    disk.budget = 200_000  # before the upload: the prefetch as well as the promotion's fetch runs out of space
    try:
        version = upload(url(cluster.hub), manifest, files, keys[0])
        promote(url(cluster.hub), REGION, version)
        wait_for(lambda: metrics.value(metrics.REFUSED, reason="disk") > before, what="disk-full counted")
        assert serving(node) == good
        assert rep.replicator.region.read_assignment().champion == good
        assert not (rep.replicator.region.root / version).exists()
    finally:
        disk.budget = None
    # Space again: the next retry fetches it and the region moves on.
    wait_for(lambda: serving(node) == version, what="served once the disk has space")
    promote(url(cluster.hub), REGION, good)
    wait_for(lambda: serving(node) == good, what="back on v1")


def test_bundle_that_fails_warm_up_is_not_served(
    cluster: Cluster, region: Any, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    """Signed and intact, but the node cannot reproduce its golden scores: the node keeps v1."""
    from tests.replicator.harness import release

    node, watcher, _rep, good = region
    bad = release(tmp_path, "c", 3, golden_offset=0.5)
    manifest, files = bundle_contents(bad, "bad-golden")
    version = upload(url(cluster.hub), manifest, files, keys[0])
    before = metrics.value(metrics.SWAP_FAILURES)
    promote(url(cluster.hub), REGION, version)
    wait_for(lambda: version in watcher.failed, what="node refused the bundle")
    assert "golden" in watcher.failed[version]
    assert metrics.value(metrics.SWAP_FAILURES) == before + 1
    assert serving(node) == good
