"""Chunks that no object names: what a killed upload, or a replacement a mirror missed, leaves behind.

An object of a JetStream object store is a run of chunk messages on ``$O.<bucket>.C.<nuid>`` and a meta
document, written last, that names the nuid. Nothing else points at the chunks, so some are left with no
meta document naming them:

- an upload killed before its meta document (the client purges its chunks when the upload fails, but
  not when its process dies): on the hub and, copied, in every region's mirror;
- an object stored again under its name, or deleted, while a region's replicator was down: the hub
  purged the old chunks, the mirror has no purge to copy, and the rollup that replaced the meta document
  dropped the old nuid with it, so a replicator that starts later cannot tell them from a live object's
  by the meta documents alone.

They are found by their subjects (a stream's per-subject counts) against the nuids the meta documents
name. Chunks written less than ``older_than_s`` ago may be an upload in progress, whose meta document
comes last, so they stay; the hub's retention uses its incomplete-upload age for both.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from replicator import names
from replicator.nats_io import StoredObject

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Orphan:
    nuid: str
    chunks: int
    bytes: int  # full chunks but the last, whose size is read
    written_at: dt.datetime  # when its last chunk was stored


async def chunk_counts(js: JetStreamContext, stream: str, bucket: str) -> dict[str, int]:
    """nuid -> how many chunk messages of it ``stream`` holds."""
    prefix = names.chunk_subject(bucket, "")
    info = await js.stream_info(stream, subjects_filter=prefix + ">")
    return {subject[len(prefix) :]: int(n) for subject, n in (info.state.subjects or {}).items()}


async def find(
    js: JetStreamContext,
    stream: str,
    bucket: str,
    objects: Iterable[StoredObject],
    older_than_s: float,
    now: dt.datetime | None = None,
) -> list[Orphan]:
    """The runs of chunks in ``stream`` that no live object of ``objects`` (the bucket's meta documents,
    listed *before* this call) names, last written at least ``older_than_s`` ago, oldest first."""
    named = {str(o.meta.get("nuid") or "") for o in objects if not o.meta.get("deleted")}
    counts = await chunk_counts(js, stream, bucket)
    now = now or dt.datetime.now(dt.UTC)
    out = []
    for nuid, n in sorted(counts.items()):
        if nuid in named or n == 0:
            continue
        try:
            last = await js.get_last_msg(stream, names.chunk_subject(bucket, nuid))
        except NotFoundError:  # purged meanwhile
            continue
        at = last.time or now
        if (now - at).total_seconds() >= older_than_s:
            out.append(Orphan(nuid, n, (n - 1) * names.CHUNK_SIZE + len(last.data or b""), at))
    return sorted(out, key=lambda o: (o.written_at, o.nuid))


async def purge(js: JetStreamContext, stream: str, bucket: str, orphans: Iterable[Orphan]) -> int:
    """Purge the orphans' chunks; how many runs it purged."""
    n = 0
    for o in orphans:
        await js.purge_stream(stream, subject=names.chunk_subject(bucket, o.nuid))
        log.info("%s: purged %d chunks (%.1f MB) no object names, last written %s", stream, o.chunks, o.bytes / 1e6,
                 o.written_at.isoformat(timespec="seconds"))  # fmt: skip
        n += 1
    return n
