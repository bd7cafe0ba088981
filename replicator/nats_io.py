"""JetStream plumbing: connections, bucket creation, and object transfer in 1 MiB chunks.

Downloads read an object's chunks with an ordered consumer straight into a
file. That works on the hub's object store and on a region's mirror of it (a
mirror has no subjects, so nats-py's ``ObjectStore.get`` cannot read it), and it
is far faster than ``get`` into memory.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, NotFoundError

from replicator import names
from replicator.errors import StoreFull, TransferError, VerificationError

log = logging.getLogger(__name__)

CHUNK_TIMEOUT_S = 5.0
Progress = Callable[[int], None]
# JetStream's answers when a write does not fit: JSInsufficientResourcesErr (the server's store is at
# max_file_store) and JSStorageResourcesExceededErr (the account's limit).
STORE_FULL_CODES = (10023, 10047)


@dataclass(frozen=True)
class StoredObject:
    """An object's latest meta document in a bucket's stream, and when the server stored it."""

    meta: dict[str, Any]
    stored_at: dt.datetime


async def connect(
    url: str,
    name: str,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
    on_disconnect: Callable[[], Awaitable[None]] | None = None,
    connect_timeout: float = 2.0,
    max_reconnect_attempts: int = -1,
) -> Client:
    async def error_cb(e: Exception) -> None:
        log.warning("nats %s: %s: %s", url, type(e).__name__, e)

    async def reconnected() -> None:
        log.info("nats %s: reconnected", url)
        if on_reconnect is not None:
            await on_reconnect()

    client: Client | None = None

    async def disconnected() -> None:
        if client is not None and client.is_closed:
            log.debug("nats %s: closed", url)  # our own close(), not a break
            return
        log.warning("nats %s: disconnected", url)
        if on_disconnect is not None:
            await on_disconnect()

    try:
        client = await nats.connect(
            url,
            name=name,
            connect_timeout=connect_timeout,
            reconnect_time_wait=0.25,
            max_reconnect_attempts=max_reconnect_attempts,
            allow_reconnect=True,
            error_cb=error_cb,
            reconnected_cb=reconnected,
            disconnected_cb=disconnected,
        )
    except (OSError, TimeoutError, nats.errors.Error) as e:
        raise TransferError(f"cannot connect to NATS at {url}: {type(e).__name__}: {e}") from e
    return client


async def ensure_hub(js: JetStreamContext) -> None:
    """Create the hub's buckets and announcement stream if missing (idempotent)."""
    await js.create_object_store(names.BUNDLES_BUCKET, config=api.ObjectStoreConfig(description="edgerank bundles"))
    await js.create_key_value(
        config=api.KeyValueConfig(bucket=names.PROMOTIONS_BUCKET, history=names.PROMOTION_HISTORY)
    )
    await js.create_key_value(config=api.KeyValueConfig(bucket=names.NODES_BUCKET, history=1))
    await js.add_stream(
        api.StreamConfig(name=names.ANNOUNCE_STREAM, subjects=[names.ANNOUNCE_SUBJECT], duplicate_window=24 * 3600.0)
    )


def sha256_digest_header(hex_sha: str) -> str:
    """The object store's digest form (``SHA-256=<urlsafe b64>``) of a hex sha256."""
    return "SHA-256=" + base64.urlsafe_b64encode(bytes.fromhex(hex_sha)).decode()


async def object_info(js: JetStreamContext, stream: str, bucket: str, name: str) -> dict[str, Any] | None:
    """An object's meta document from a bucket's stream (origin or mirror); None if absent or deleted."""
    try:
        msg = await js.get_msg(stream, subject=names.meta_subject(bucket, name))
    except NotFoundError:
        return None
    info = json.loads(msg.data or b"{}")
    return None if info.get("deleted") else info


async def list_objects(js: JetStreamContext, stream: str, bucket: str) -> list[StoredObject]:
    """The latest meta document of every object in a bucket's stream (origin or mirror), deleted ones included."""
    subject = names.meta_subject_all(bucket)
    try:
        await js.get_msg(stream, subject=subject)  # the last message on any meta subject: is there one?
    except NotFoundError:
        return []
    sub = await js.subscribe(
        subject, stream=stream, ordered_consumer=True, deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT
    )
    out: list[StoredObject] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=CHUNK_TIMEOUT_S)
            except TimeoutError as e:
                raise TransferError(f"{stream}: listing stopped for {CHUNK_TIMEOUT_S:.0f} s after {len(out)}") from e
            try:
                meta = json.loads(msg.data or b"{}")
            except ValueError:
                log.warning("%s: unreadable object meta on %s", stream, msg.subject)
                meta = None
            if isinstance(meta, dict):
                out.append(StoredObject(meta, msg.metadata.timestamp))
            if msg.metadata.num_pending == 0:
                return out
    finally:
        try:
            await sub.unsubscribe()
        except nats.errors.Error as e:
            log.debug("unsubscribe after listing %s: %s", stream, e)


async def put_file(js: JetStreamContext, name: str, path: Path, hex_sha: str, progress: Progress) -> bool:
    """Upload ``path`` as object ``name`` unless an identical object is there; True if uploaded.

    Raises :class:`StoreFull` when the server has no room for it (nothing of this object stays stored)."""
    info = await object_info(js, names.BUNDLES_STREAM, names.BUNDLES_BUCKET, name)
    if info is not None and info.get("digest") == sha256_digest_header(hex_sha):
        progress(int(info.get("size", 0)))
        return False
    store = await js.object_store(names.BUNDLES_BUCKET)
    meta = api.ObjectMeta(name=name, options=api.ObjectMetaOptions(max_chunk_size=names.CHUNK_SIZE))
    with open(path, "rb") as f:
        try:
            result = await store.put(name, f, meta=meta)  # type: ignore[arg-type]
        except APIError as e:
            if e.err_code not in STORE_FULL_CODES:
                raise
            raise StoreFull(
                f"the JetStream store has no room for {name} ({path.stat().st_size / 1e6:.1f} MB): "
                f"{e.description} (err_code {e.err_code})"
            ) from e
    if result.digest != sha256_digest_header(hex_sha):
        raise TransferError(f"{name}: uploaded digest {result.digest} does not match the manifest")
    progress(int(result.size or 0))
    return True


async def get_file(
    js: JetStreamContext,
    stream: str,
    bucket: str,
    name: str,
    dest: Path,
    progress: Progress,
    write: Callable[[Any, bytes], None] | None = None,
    expect: tuple[int, str] | None = None,
) -> dict[str, Any]:
    """Download object ``name`` into ``dest`` via an ordered consumer; returns its meta document.

    Checks the chunk count, the size and the object store's own digest, and
    ``expect`` (size, hex sha256: the manifest's) on the bytes as they arrive:
    ``dest`` appears only if all of them match. ``write`` replaces
    ``file.write`` (a test hook for faults of the disk).
    """
    info = await object_info(js, stream, bucket, name)
    if info is None:
        raise TransferError(f"object {name} is not in {stream}")
    size, nuid = int(info["size"]), info["nuid"]
    tmp = dest.with_name(dest.name + ".part")
    h = hashlib.sha256()
    got = 0
    chunks = 0
    sub = None
    try:
        with open(tmp, "wb") as f:
            if size > 0:
                sub = await js.subscribe(
                    names.chunk_subject(bucket, nuid), stream=stream, ordered_consumer=True, idle_heartbeat=1.0
                )
                while got < size:
                    try:
                        msg = await sub.next_msg(timeout=CHUNK_TIMEOUT_S)
                    except TimeoutError as e:
                        raise TransferError(
                            f"{name}: no chunk for {CHUNK_TIMEOUT_S:.0f} s at {got}/{size} bytes"
                        ) from e
                    data = msg.data
                    (write or _write)(f, data)
                    h.update(data)
                    got += len(data)
                    chunks += 1
                    progress(len(data))
            f.flush()
            os.fsync(f.fileno())
    except nats.errors.Error as e:
        raise TransferError(f"{name}: {type(e).__name__}: {e}") from e
    finally:
        if sub is not None:
            try:
                await sub.unsubscribe()
            except nats.errors.Error as e:  # the connection may be gone; the consumer expires by itself
                log.debug("unsubscribe after %s: %s", name, e)
    digest = "SHA-256=" + base64.urlsafe_b64encode(h.digest()).decode()
    if got != size or chunks != int(info.get("chunks", chunks)) or digest != info.get("digest"):
        tmp.unlink()
        raise TransferError(f"{name}: received {got}/{size} bytes in {chunks} chunks, digest {digest}")
    if expect is not None:
        want_size, want_sha = expect
        if got != want_size:
            tmp.unlink()
            raise VerificationError(f"{name} is {got} bytes, the manifest says {want_size}")
        if h.hexdigest() != want_sha:
            tmp.unlink()
            raise VerificationError(f"{name} fails its sha256 check")
    os.replace(tmp, dest)
    return info


def _write(f: Any, data: bytes) -> None:
    f.write(data)


async def with_timeout(coro: Awaitable[Any], seconds: float, what: str) -> Any:
    try:
        return await asyncio.wait_for(coro, seconds)
    except TimeoutError as e:
        raise TransferError(f"{what}: no answer within {seconds:.0f} s") from e
