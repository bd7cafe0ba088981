"""Writes to the hub's buckets from a region's leaf (real hub and leaves on loopback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nats.js.errors import NoStreamResponseError

from node.cli import main
from replicator import names, promotions
from replicator.domain_kv import key_value
from tests.replicator.cluster import Cluster, url
from tests.replicator.harness import hub_call, publish_bundle


def test_kv_writes_from_a_leaf_reach_the_hub(cluster: Cluster, keys: tuple[Path, Path], v1: Path) -> None:
    hub, leaf = url(cluster.hub), url(cluster.leaves["us-east"])
    publish_bundle(hub, v1, keys[0])  # creates the hub's buckets

    async def plain(js: Any) -> None:
        kv = await js.key_value(names.NODES_BUCKET)  # reads go through the domain; the write does not
        await kv.put("us-east.plain", b"{}")

    with pytest.raises(NoStreamResponseError):  # why replicator.domain_kv exists (nats-py 2.16)
        hub_call(leaf, plain)

    async def addressed(js: Any) -> bytes | None:
        kv = await key_value(js, names.NODES_BUCKET, "hub")
        await kv.put("us-east.n1", b'{"serving": "v1"}')
        await kv.update("us-east.n1", b'{"serving": "v2"}', last=(await kv.get("us-east.n1")).revision)
        return (await kv.get("us-east.n1")).value

    assert hub_call(leaf, addressed) == b'{"serving": "v2"}'

    async def on_hub(js: Any) -> tuple[bytes | None, list[str]]:
        kv = await js.key_value(names.NODES_BUCKET)
        return (await kv.get("us-east.n1")).value, await kv.keys()

    assert hub_call(hub, on_hub) == (b'{"serving": "v2"}', ["us-east.n1"])


def test_operator_commands_through_a_leaf(
    cluster: Cluster, keys: tuple[Path, Path], v1: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub, leaf = url(cluster.hub), url(cluster.leaves["eu-west"])
    version = publish_bundle(hub, v1, keys[0]).version
    assert main(["promote", "--region", "eu-west", version, "--nats-url", leaf]) == 0
    assert f"eu-west on the hub: champion {version}" in capsys.readouterr().out
    assert hub_call(hub, promotions.all_regions)["eu-west"].champion == version
    # The compare-and-swap's refusal comes back through the leaf too: one line, exit 2.
    assert main(["rollback", "--region", "eu-west", "--nats-url", leaf]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no previous version" in err[0], err
