"""Reading and writing promotion state: compare-and-swap on KV revisions, history kept.

The hub's ``edgerank-promotions`` bucket is the source of truth. A write reads
the region's key and its revision, applies a pure operation
(:mod:`replicator.assignment`) and updates with ``last=revision``; a lost race
re-reads and retries. A write that timed out may still land after a
reconnect: each write carries a ``write_id``, and a retry that finds its own
``write_id`` already stored stops there.

A region cut off from the hub writes a local override instead (its leaf's
``edgerank-overrides`` bucket), computed from its mirror of the hub's state.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import nats
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError

from replicator import names
from replicator.assignment import Assignment, check_region, check_version
from replicator.assignment import effective as assign_effective
from replicator.domain_kv import key_value
from replicator.errors import PromotionError, TransferError
from replicator.nats_io import object_info

log = logging.getLogger(__name__)

CAS_TRIES = 8


async def read_stream_key(js: JetStreamContext, stream: str, bucket: str, key: str) -> Assignment | None:
    """The last value of a KV key read from its stream (works on a mirror, which has no subjects)."""
    try:
        msg = await js.get_msg(stream, subject=names.kv_subject(bucket, key))
    except NotFoundError:
        return None
    op = (msg.headers or {}).get("KV-Operation")
    if op in ("DEL", "PURGE") or not msg.data:
        return None
    return Assignment.from_json(msg.data)


async def update(
    js: JetStreamContext,
    bucket: str,
    region: str,
    op: Callable[[Assignment], Assignment],
    domain: str | None = None,
) -> Assignment:
    """Apply ``op`` to ``region``'s state with compare-and-swap; returns the stored state. ``domain``: the
    JetStream domain ``js`` was made for, if any (the writes then land from a leaf too: :mod:`replicator.domain_kv`)."""
    check_region(region)
    kv = await key_value(js, bucket, domain)
    wanted: Assignment | None = None
    for _ in range(CAS_TRIES):
        try:
            entry = await kv.get(region)
            current, revision = Assignment.from_json(entry.value or b""), entry.revision
        except KeyNotFoundError:
            current, revision = Assignment(region=region), None
        if wanted is not None and current.write_id == wanted.write_id:
            return current  # our earlier write landed after all
        new = op(current)
        if new is current:
            return current  # nothing to change
        wanted = new
        try:
            if revision is None:
                await kv.create(region, new.to_json())
            else:
                await kv.update(region, new.to_json(), last=revision)
            return new
        except KeyWrongLastSequenceError:
            log.info("promotion state of %s changed under us; re-reading", region)
        except APIError as e:  # create() of a key that appeared meanwhile
            if "wrong last sequence" not in str(e).lower() and getattr(e, "err_code", None) != 10071:
                raise
        except (TimeoutError, nats.errors.TimeoutError) as e:
            log.warning("promotion write to %s timed out (%s); re-reading before retrying", region, e)
    raise PromotionError(f"region {region}: promotion state kept changing; gave up after {CAS_TRIES} tries")


async def require_published(js: JetStreamContext, version: str, stream: str = names.BUNDLES_STREAM) -> None:
    check_version(version)
    info = await object_info(js, stream, names.BUNDLES_BUCKET, names.object_name(version, names.MANIFEST_OBJECT))
    if info is None:
        raise PromotionError(f"version {version} was never published (edgerank publish BUNDLE_DIR first)")


async def history(js: JetStreamContext, region: str, limit: int = 10) -> list[Assignment]:
    kv = await js.key_value(names.PROMOTIONS_BUCKET)
    try:
        entries = await kv.history(region)
    except (KeyNotFoundError, nats.js.errors.NoKeysError):
        return []
    return [Assignment.from_json(e.value) for e in entries[-limit:] if e.value]


async def all_regions(js: JetStreamContext) -> dict[str, Assignment]:
    kv = await js.key_value(names.PROMOTIONS_BUCKET)
    try:
        keys = await kv.keys()
    except nats.js.errors.NoKeysError:
        return {}
    out = {}
    for key in sorted(keys):
        entry = await kv.get(key)
        if entry.value:
            out[key] = Assignment.from_json(entry.value)
    return out


async def ensure_local_buckets(js: JetStreamContext) -> None:
    """The region-local overrides bucket (created on the region's leaf)."""
    try:
        await js.create_key_value(config=api.KeyValueConfig(bucket=names.OVERRIDES_BUCKET, history=16))
    except nats.errors.Error as e:
        raise TransferError(f"cannot create {names.OVERRIDES_BUCKET}: {e}") from e


async def local_override(js: JetStreamContext, region: str, op: Callable[[Assignment], Assignment]) -> Assignment:
    """Apply ``op`` to the region's effective state as seen by its leaf; store it as a local override."""
    hub = await read_stream_key(js, names.PROMOTIONS_STREAM, names.PROMOTIONS_BUCKET, region)
    if hub is None:
        raise PromotionError(f"region {region}: the leaf's mirror holds no promotion state for it")

    def override(current: Assignment) -> Assignment:
        base = assign_effective(hub, current if current.generation else None) or hub
        new = op(base)
        return dataclasses.replace(new, source="local-override", base_generation=hub.generation)

    return await update(js, names.OVERRIDES_BUCKET, region, override)
