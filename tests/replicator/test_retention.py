"""Retention of the hub's bundle store: what stays, pruning on the hub and in the leaves' mirrors, a full store.

The plan is pure and tested on its own; pruning, the mirrors' purge and a full store run on real
nats-server processes (a hub and two region leaves).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from nats.js import api
from nats.js.errors import NotFoundError

from node.cli import main
from replicator import gates, names, retention, signing
from replicator.errors import StoreFull
from replicator.mirrors import behind, ensure_mirrors
from replicator.nats_io import StoredObject, ensure_hub, list_objects, put_file
from replicator.publish import publish
from replicator.replicate import ReplicatorConfig
from tests.replicator.cluster import Cluster, start_cluster, url
from tests.replicator.harness import ReplicatorThread, hub_call, promote, publish_bundle, release, wait_for
from trainer.bundle import sha256_file

T0 = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def stored(version: str, minutes_ago: float, complete: bool = True, mb: float = 1.0) -> retention.StoredVersion:
    return retention.StoredVersion(
        version, complete, int(mb * 1e6), (f"{version}/x",), T0 - dt.timedelta(minutes=minutes_ago)
    )


def test_plan_keeps_what_regions_use_the_newest_and_a_fresh_upload() -> None:
    versions = {
        v.version: v
        for v in (
            stored("v1", 600),
            stored("v2", 500),
            stored("v3", 400),
            stored("v4", 300),
            stored("v5", 200),
            stored("v6-partial", 5, complete=False),
            stored("v0-partial", 900, complete=False),
        )
    }
    referenced = {"v1": ["champion of eu-west", "previous of us-east"], "v3": ["shadow of us-east"]}
    got = {d.version: (d.keep, d.why) for d in retention.plan(versions, referenced, 2, T0)}
    assert got == {
        "v6-partial": (True, "upload in progress? last written 300 s ago"),
        "v5": (True, "one of the newest 2"),
        "v4": (True, "one of the newest 2"),
        "v3": (True, "shadow of us-east"),
        "v2": (False, "no region uses it; older than the newest 2"),
        "v1": (True, "champion of eu-west, previous of us-east"),
        "v0-partial": (False, "incomplete upload, last written 54000 s ago"),
    }
    order = [d.version for d in retention.plan(versions, referenced, 2, T0)]
    assert order == ["v6-partial", "v5", "v4", "v3", "v2", "v1", "v0-partial"]  # newest first


def test_plan_keep_zero_protect_and_a_negative_keep() -> None:
    versions = {v.version: v for v in (stored("a", 30), stored("b", 20), stored("c", 10, complete=False))}
    got = {d.version: d.keep for d in retention.plan(versions, {}, 0, T0, incomplete_after_s=60.0)}
    assert got == {"a": False, "b": False, "c": False}
    why = {d.version: (d.keep, d.why) for d in retention.plan(versions, {}, 0, T0, 60.0, {"c": "being published"})}
    assert why["c"] == (True, "being published") and not why["a"][0] and not why["b"][0]
    with pytest.raises(ValueError, match="keep: must not be negative"):
        retention.plan(versions, {}, -1, T0)


def test_stored_versions_groups_by_version_manifest_first_and_skips_deleted() -> None:
    def obj(name: str, size: int, minute: int, deleted: bool = False) -> StoredObject:
        meta = {"name": name, "size": size, "nuid": name, **({"deleted": True} if deleted else {})}
        return StoredObject(meta, T0 + dt.timedelta(minutes=minute))

    objects = [
        obj("v1/b.npy", 10, 1),
        obj("v1/manifest.json", 2, 2),
        obj("v1/a.npy", 5, 0),
        obj("v2/a.npy", 7, 3),
        obj("v2/b.npy", 1, 4),
        obj("v3/manifest.json", 0, 5, deleted=True),
    ]
    got = retention.stored_versions(objects)
    assert set(got) == {"v1", "v2"}
    assert got["v1"] == retention.StoredVersion(
        "v1", True, 17, ("v1/manifest.json", "v1/a.npy", "v1/b.npy"), T0 + dt.timedelta(minutes=2)
    )
    assert got["v2"] == retention.StoredVersion("v2", False, 8, ("v2/a.npy", "v2/b.npy"), T0 + dt.timedelta(minutes=4))


def stream_bytes(server_url: str, domain: str | None) -> int:
    async def go(js: Any) -> int:
        return int((await js.stream_info(names.BUNDLES_STREAM)).state.bytes)

    return int(hub_call(server_url, go, domain=domain))


def last_seq(server_url: str, domain: str | None) -> int:
    async def go(js: Any) -> int:
        return int((await js.stream_info(names.BUNDLES_STREAM)).state.last_seq)

    return int(hub_call(server_url, go, domain=domain))


def live_chunks(server_url: str, nuids: list[str]) -> list[str]:
    """The nuids among ``nuids`` that still have chunks in the bundle stream (origin or mirror) at ``server_url``."""

    async def go(js: Any) -> list[str]:
        out = []
        for nuid in nuids:
            try:
                await js.get_msg(names.BUNDLES_STREAM, subject=names.chunk_subject(names.BUNDLES_BUCKET, nuid))
                out.append(nuid)
            except NotFoundError:
                pass
        return out

    return list(hub_call(server_url, go, domain=None))


def no_chunks(server_url: str, nuids: list[str]) -> bool:
    return live_chunks(server_url, nuids) == []


def has_all(rep: ReplicatorThread, versions: tuple[str, ...]) -> bool:
    return all(rep.replicator.region.has(v) for v in versions)


def put_scratch(server_url: str, tmp: Path, data: bytes, name: str = "scratch/blob") -> str:
    """Store ``data`` as the object ``name`` on the hub (not a bundle: no region fetches it); its nuid. A name
    without a "/" is no version's: retention leaves it alone."""
    path = tmp / "blob"
    path.write_bytes(data)
    assert hub_call(server_url, lambda js: put_file(js, name, path, sha256_file(path), lambda _: None))

    async def go(js: Any) -> list[StoredObject]:
        return await list_objects(js, names.BUNDLES_STREAM, names.BUNDLES_BUCKET)

    return str(next(o.meta["nuid"] for o in hub_call(server_url, go, domain=None) if o.meta["name"] == name))


def version_objects(server_url: str, version: str) -> list[dict[str, Any]]:
    async def go(js: Any) -> list[StoredObject]:
        return await list_objects(js, names.BUNDLES_STREAM, names.BUNDLES_BUCKET)

    return [o.meta for o in hub_call(server_url, go, domain=None) if o.meta["name"].startswith(version + "/")]


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return [release(tmp_path_factory.mktemp(f"r{i}"), p, 10 + i) for i, p in enumerate("pqrs")]


def test_prune_deletes_unused_versions_on_the_hub_and_in_both_mirrors(
    cluster: Cluster,
    keys: tuple[Path, Path],
    releases: list[Path],
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hub = url(cluster.hub)
    reps = {
        region: ReplicatorThread(
            ReplicatorConfig(url(leaf), region, tmp_path_factory.mktemp(region), keys[1], retry_s=0.2, keep=4)
        ).start()
        for region, leaf in cluster.leaves.items()
    }
    try:
        a, b, c, d = (publish_bundle(hub, path, keys[0]).version for path in releases)
        promote(hub, "eu-west", a)
        promote(hub, "us-east", c)
        for region, rep in reps.items():  # every version prefetched: each mirror holds all four
            wait_for(partial(has_all, rep, (a, b, c, d)), what=f"{region} has all four")
        b_nuids = [o["nuid"] for o in version_objects(hub, b)]
        b_bytes = sum(int(o["size"]) for o in version_objects(hub, b))
        assert len(b_nuids) >= 10 and b_bytes > 500_000
        before = {name: stream_bytes(url(s), None) for name, s in (("hub", cluster.hub), *cluster.leaves.items())}
        staging = reps["eu-west"].replicator.region.staging(b)
        staging.mkdir()  # as a download of b cut short would leave it
        (staging / "index.usearch").write_bytes(b"partial")
        # us-east's replicator is away while the hub deletes: it sweeps its mirror when it starts again.
        us_east = reps["us-east"]
        us_east.stop()
        assert us_east.error is None, us_east.error

        assert main(["prune", "--keep", "1", "--dry-run", "--nats-url", hub]) == 0
        out = capsys.readouterr().out
        assert f"would delete 1 of 4 versions ({b_bytes / 1e6:.1f} MB)" in out, out
        rows = {line.split()[0]: line for line in out.splitlines()[1:-1]}
        assert "delete" in rows[b] and "no region uses it" in rows[b], rows
        assert "champion of eu-west" in rows[a] and "champion of us-east" in rows[c], rows
        assert "one of the newest 1" in rows[d], rows
        assert len(version_objects(hub, b)) == len(b_nuids)  # a dry run deletes nothing

        assert main(["prune", "--keep", "1", "--json", "--nats-url", hub]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["deleted"] == [b] and doc["deleted_bytes"] == b_bytes, doc
        metas = version_objects(hub, b)
        assert metas and all(m.get("deleted") for m in metas)
        assert live_chunks(hub, b_nuids) == []
        assert stream_bytes(hub, None) <= before["hub"] - b_bytes
        assert live_chunks(url(cluster.leaves["us-east"]), b_nuids) == b_nuids  # the purge does not reach a mirror
        reps["us-east"] = ReplicatorThread(dataclasses.replace(us_east.replicator.config)).start()
        for region, leaf in cluster.leaves.items():  # each region's replicator purges its mirror
            wait_for(partial(no_chunks, url(leaf), b_nuids), what=f"{region}'s mirror purged")
            assert stream_bytes(url(leaf), None) <= before[region] - b_bytes
        wait_for(lambda: not staging.exists(), what="the partial download of a deleted version dropped")
        for v in (a, c, d):  # what stays is whole: still every chunk
            assert live_chunks(hub, [o["nuid"] for o in version_objects(hub, v)]) == [
                o["nuid"] for o in version_objects(hub, v)
            ]
        assert main(["prune", "--keep", "1", "--nats-url", hub]) == 0
        assert "deleted 0 of 3 versions" in capsys.readouterr().out

        # An object stored again under its name: the hub's put purges its old chunks, each mirror's replicator too.
        nuids = [put_scratch(hub, tmp_path_factory.mktemp("scratch"), bytes([k]) * 300_000) for k in (1, 2)]
        for region, leaf in cluster.leaves.items():
            wait_for(partial(no_chunks, url(leaf), nuids[:1]), what=f"{region}'s mirror purged the old chunks")
            assert live_chunks(url(leaf), nuids) == nuids[1:]
        assert live_chunks(hub, nuids) == nuids[1:]
    finally:
        for rep in reps.values():
            rep.stop()
            assert rep.error is None, rep.error


def killed_upload(server_url: str, chunks: int) -> str:
    """Chunks on the hub with no meta document, as an upload killed mid-file leaves them (full chunks, the
    last one short); their nuid."""
    nuid = f"KILLED{chunks}UPLOAD{dt.datetime.now(dt.UTC):%H%M%S%f}"

    async def go(js: Any) -> None:
        for k in range(chunks):
            size = names.CHUNK_SIZE if k < chunks - 1 else 1000
            await js.publish(names.chunk_subject(names.BUNDLES_BUCKET, nuid), bytes([k]) * size)

    hub_call(server_url, go)
    return nuid


def test_chunks_no_object_names_go_from_the_hub_and_the_mirrors_once_old(
    cluster: Cluster,
    keys: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hub, leaf = url(cluster.hub), url(cluster.leaves["eu-west"])
    hub_call(hub, ensure_hub)  # run alone, no test before it has published or started a replicator
    hub_call(leaf, lambda js: ensure_mirrors(js, "hub"), domain=None)
    killed = killed_upload(hub, 3)
    first = put_scratch(hub, tmp_path_factory.mktemp("o1"), b"\x07" * 200_000, name="loose")
    wait_for(lambda: live_chunks(leaf, [killed, first]) == [killed, first], what="the mirror copied both")
    # Stored again while eu-west's replicator is down: the hub purges the old chunks, the mirror cannot
    # see that, and the new meta document replaces the only one that named them.
    second = put_scratch(hub, tmp_path_factory.mktemp("o2"), b"\x08" * 200_000, name="loose")
    wait_for(lambda: live_chunks(leaf, [second]) == [second], what="the mirror copied the new object")
    assert live_chunks(hub, [killed, first, second]) == [killed, second]

    # Young chunks may be an upload in progress: they stay, on the hub and in the mirror, and prune says so.
    assert main(["prune", "--keep", "5", "--json", "--nats-url", hub]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert not any(d.startswith("chunks ") for d in doc["deleted"]), doc
    young = [d for d in doc["versions"] if d["orphan"]]
    assert [(d["version"], d["keep"]) for d in young] == [(f"chunks {killed}", True)], young
    assert "an upload in progress?" in young[0]["why"], young
    config = ReplicatorConfig(leaf, "eu-west", tmp_path_factory.mktemp("eu-orphans"), keys[1], retry_s=0.2)
    rep = ReplicatorThread(config).start()
    try:
        wait_for(lambda: rep.replicator._swept_at is not None, what="the start-up sweep")
    finally:
        rep.stop()
    assert rep.error is None, rep.error
    assert live_chunks(leaf, [killed, first, second]) == [killed, first, second]

    # Old enough: the hub's prune purges the killed upload and says so; the mirror's sweep purges both.
    assert main(["prune", "--keep", "5", "--incomplete-after", "0", "--dry-run", "--nats-url", hub]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith(f"chunks {killed}"))
    mb = (2 * names.CHUNK_SIZE + 1000) / 1e6
    assert "delete*" in row and "3 chunks no object names" in row and f" {mb:.1f} " in row, row
    assert "and 1 runs of chunks no object names" in out, out
    assert live_chunks(hub, [killed]) == [killed]  # a dry run purges nothing
    assert main(["prune", "--keep", "5", "--incomplete-after", "0", "--json", "--nats-url", hub]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert f"chunks {killed}" in doc["deleted"], doc
    assert [d["bytes"] for d in doc["versions"] if d["orphan"]] == [2 * names.CHUNK_SIZE + 1000], doc
    assert live_chunks(hub, [killed, second]) == [second]
    rep = ReplicatorThread(dataclasses.replace(config, orphans_after_s=0.0, sweep_s=0.5)).start()
    try:
        wait_for(lambda: live_chunks(leaf, [killed, first]) == [], what="the mirror's sweep purged both")
        # Swept again while running: chunks orphaned later go too, and the live object stays whole.
        again = killed_upload(hub, 2)
        last = last_seq(hub, "hub")  # a mirror keeps the origin's sequence numbers
        wait_for(lambda: last_seq(leaf, None) >= last, what="the mirror copied the new killed upload")
        wait_for(lambda: live_chunks(leaf, [again]) == [], what="a later sweep purged it")
    finally:
        rep.stop()
    assert rep.error is None, rep.error
    assert live_chunks(leaf, [second]) == [second] and live_chunks(hub, [second]) == [second]


@pytest.mark.parametrize(
    ("mirror", "why"),
    [
        (None, None),  # the origin stream
        (api.StreamSourceInfo(name="bundles", lag=0, active=2_000_000_000), None),
        (api.StreamSourceInfo(name="bundles", lag=12, active=1_000_000), "12 messages behind the hub"),
        (api.StreamSourceInfo(name="bundles", lag=0, active=95_000_000_000), "out of contact with the hub for 95 s"),
        (api.StreamSourceInfo(name="bundles", lag=0, active=-1), "out of contact with the hub"),
    ],
)
def test_orphans_are_only_swept_from_a_mirror_caught_up_with_the_hub(
    mirror: api.StreamSourceInfo | None, why: str | None
) -> None:
    state = api.StreamState(messages=1, bytes=1, first_seq=1, last_seq=1, consumer_count=0)
    info = api.StreamInfo(config=api.StreamConfig(name="bundles"), state=state, mirror=mirror)
    assert behind(info) == why


@pytest.fixture
def small_cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = start_cluster(tmp_path, regions=(), max_file_store="2700000")  # room for two releases of about 1.05 MB
    yield c
    c.stop()


def test_a_full_store_is_one_clear_line_and_publish_makes_room(
    small_cluster: Cluster,
    keys: tuple[Path, Path],
    releases: list[Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    hub = url(small_cluster.hub)
    a = publish_bundle(hub, releases[0], keys[0]).version
    b = publish_bundle(hub, releases[1], keys[0]).version
    with pytest.raises(
        StoreFull, match=r"no room for \S+/\S+ \(\d+\.\d MB\).* 2 of which no region uses .*: edgerank prune deletes"
    ):
        publish_bundle(hub, releases[2], keys[0])
    argv = ["publish", str(releases[2]), "--keep", "0", "--nats-url", hub, "--key", str(keys[0])]
    code = main([*argv, "--json", "--log-level", "WARNING"])  # no progress bar; the gates' lines are INFO
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, (code, err)
    assert err[0].startswith("edgerank: error: the JetStream store has no room for ") and "err_code 100" in err[0]

    k = signing.load_private(keys[0])
    result = hub_call(hub, lambda js: publish(js, releases[2], k, gates.GateConfig(), progress=False, keep=2))
    assert result.pruned == [a] and result.pruned_bytes > 1_000_000, result
    assert result.skipped_files > 0  # what the failed attempts uploaded was kept ("being published") and reused
    assert [o for o in version_objects(hub, a) if not o.get("deleted")] == []
    assert all(not o.get("deleted") for o in version_objects(hub, b))
    # the CLI says what it pruned
    code = main(["publish", str(releases[3]), "--keep", "2", "--nats-url", hub, "--key", str(keys[0])])
    out = capsys.readouterr().out
    assert code == 0 and "edgerank: pruned from the hub what no region uses" in out and b in out, out
    d = result.version, json.loads((releases[3] / "manifest.json").read_text())["version"]
    # every version held is in use: the error says which, and nothing is deleted
    promote(hub, "eu-west", d[0])
    promote(hub, "eu-west", d[1])
    with pytest.raises(StoreFull, match=rf"all kept: {d[1]} \(champion of eu-west\), {d[0]} \(previous of eu-west\)"):
        hub_call(hub, lambda js: publish(js, releases[0], k, gates.GateConfig(), progress=False, keep=2))
    assert all(not o.get("deleted") for v in d for o in version_objects(hub, v))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["prune", "--keep", "-1"], "--keep: must not be negative, got -1"),
        (["prune", "--incomplete-after", "-5"], "--incomplete-after: must not be negative, got -5.0"),
        (["publish", "/nonexistent", "--keep", "x"], "--keep: not an integer: 'x'"),
    ],
)
def test_bad_retention_flags_are_one_line_naming_the_flag(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*args, "--nats-url", "nats://127.0.0.1:1"]) == 2  # refused before any connection
    assert capsys.readouterr().err.splitlines() == [f"edgerank: error: {message}"]
