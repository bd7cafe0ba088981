"""Smoke tests of the real test servers: they start, answer, and restart."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import nats
import pytest
import redis

from node.local_servers import NATS_GOMEMLIMIT
from tests.servers import NatsServer, RedisServer, ServerError, find_nats_server


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_redis_set_get(redis_server: RedisServer) -> None:
    key = _unique("smoke")
    with redis_server.client() as client:
        assert client.set(key, b"value")
        assert client.get(key) == b"value"


def test_redis_restart_keeps_url(redis_server: RedisServer) -> None:
    key = _unique("restart")
    url = redis_server.url
    with redis_server.client() as client:
        client.set(key, b"before")
        redis_server.stop()
        assert not redis_server.running
        with pytest.raises(redis.ConnectionError):
            client.get(key)
        redis_server.start()
        assert redis_server.url == url
        # No persistence: a restarted Redis is empty, and the client reconnects.
        assert client.get(key) is None
        client.set(key, b"after")
        assert client.get(key) == b"after"


def test_redis_pause_times_out_then_resumes(redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url, socket_timeout=0.2) as client:
        client.ping()
        redis_server.pause()
        try:
            with pytest.raises(redis.TimeoutError):
                client.ping()
        finally:
            redis_server.resume()
        assert client.ping()


async def _publish_twice_and_kv(url: str) -> tuple[int, bool, bytes | None]:
    nc = await nats.connect(url, connect_timeout=5)
    try:
        js = nc.jetstream()
        stream = _unique("SMOKE")
        await js.add_stream(name=stream, subjects=[f"{stream}.>"], duplicate_window=60.0)
        headers = {"Nats-Msg-Id": "event-1"}
        first = await js.publish(f"{stream}.events", b"payload", headers=headers)
        second = await js.publish(f"{stream}.events", b"payload", headers=headers)
        info = await js.stream_info(stream)
        assert not first.duplicate
        kv = await js.create_key_value(bucket=_unique("smoke"))
        revision = await kv.put("eu-west", b"v1")
        entry = await kv.get("eu-west")
        assert entry.revision == revision
        return info.state.messages, bool(second.duplicate), entry.value
    finally:
        await nc.close()


def test_nats_jetstream_dedup_and_kv(nats_server: NatsServer) -> None:
    messages, duplicate, value = asyncio.run(_publish_twice_and_kv(nats_server.url))
    assert duplicate
    assert messages == 1
    assert value == b"v1"


async def _create_stream(url: str, stream: str) -> None:
    nc = await nats.connect(url, connect_timeout=5)
    try:
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[f"{stream}.>"])
        await js.publish(f"{stream}.a", b"kept", headers={"Nats-Msg-Id": "a-1"})
    finally:
        await nc.close()


async def _stream_messages(url: str, stream: str) -> int:
    nc = await nats.connect(url, connect_timeout=5)
    try:
        info = await nc.jetstream().stream_info(stream)
        return int(info.state.messages)
    finally:
        await nc.close()


def test_nats_restart_keeps_url_and_streams(nats_server: NatsServer) -> None:
    stream = _unique("RESTART")
    url = nats_server.url
    asyncio.run(_create_stream(url, stream))
    nats_server.stop()
    assert not nats_server.running
    nats_server.start()
    assert nats_server.url == url
    # The JetStream store directory is kept, so file-backed streams survive.
    assert asyncio.run(_stream_messages(url, stream)) == 1


def _thread_niceness(pid: int) -> set[int]:
    """The niceness of every thread of ``pid`` (field 19 of /proc/PID/task/TID/stat)."""
    tasks = Path(f"/proc/{pid}/task")
    return {int((t / "stat").read_text().rsplit(")", 1)[1].split()[16]) for t in tasks.iterdir()}


def test_nats_runs_at_the_niceness_asked_for(tmp_path: Path) -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    server = NatsServer(find_nats_server(), tmp_path, niceness=7)
    server.start()
    try:
        assert server._proc is not None
        # Every thread the Go runtime started inherits it: the process was niced before it began.
        assert _thread_niceness(server._proc.pid) == {min(19, base + 7)}
        asyncio.run(_create_stream(server.url, _unique("NICE")))  # and it serves JetStream
    finally:
        server.stop()


@pytest.mark.parametrize("niceness", [-1, 20])
def test_a_niceness_out_of_range_is_refused(tmp_path: Path, niceness: int) -> None:
    with pytest.raises(ServerError, match=r"niceness must be in \[0, 19\], got"):
        NatsServer(find_nats_server(), tmp_path, niceness=niceness)


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@pytest.mark.parametrize(("ours", "expected"), [(None, NATS_GOMEMLIMIT), ("300MiB", "300MiB")])
def test_nats_runs_with_a_go_memory_limit_unless_one_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ours: str | None, expected: str
) -> None:
    if ours is None:
        monkeypatch.delenv("GOMEMLIMIT", raising=False)
    else:
        monkeypatch.setenv("GOMEMLIMIT", ours)
    server = NatsServer(find_nats_server(), tmp_path)
    server.start()
    try:
        assert server._proc is not None
        assert _environ(server._proc.pid)["GOMEMLIMIT"] == expected
        asyncio.run(_create_stream(server.url, _unique("MEM")))  # it serves JetStream under the limit
        peak = server.peak_rss_mb()
        assert peak is not None and 1.0 < peak < 4096.0, peak
    finally:
        server.stop()
    assert server.peak_rss_mb() is None
