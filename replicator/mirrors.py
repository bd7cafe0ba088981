"""Mirrors of the hub's promotion and bundle buckets on a region's leaf node.

A mirror lives in the region's own JetStream domain and sources the hub's
stream through ``$JS.<hub domain>.API``, so the region can read every
promotion and every bundle file while cut off from the hub. When the region's
server is the hub itself (one server, as in a single-region setup or a test),
the origin streams are used directly.

A mirror copies what the hub stores, not what it deletes: deleting an object
on the hub writes a "deleted" meta document (which the mirror copies) and
purges the object's chunks (which the mirror does not see). So a region's
replicator purges, from its mirror, the chunks of every object the hub has
deleted (:func:`sweep`, :func:`purge_chunks`); without it a leaf's store would
fill with versions the hub pruned long ago (:mod:`replicator.retention`). An
object stored again under its name (new content, new nuid) leaves its old
chunks behind in the same way, and they are purged alike. What a replicator
missed while it was down (a replacement's old nuid is gone with the meta
document the rollup dropped) and what a killed upload left are found by their
subjects instead (:mod:`replicator.orphans`).
"""

from __future__ import annotations

import logging

from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from replicator import names, orphans
from replicator.nats_io import list_objects
from replicator.retention import INCOMPLETE_AFTER_S

log = logging.getLogger(__name__)

MIRRORED = (names.PROMOTIONS_STREAM, names.BUNDLES_STREAM)
# Chunks no object names are purged from the mirror once this old: an upload in progress on the hub writes
# its meta document last, and one that failed is given up on by the hub's retention after as long.
ORPHANS_AFTER_S = INCOMPLETE_AFTER_S


async def ensure_mirrors(js: JetStreamContext, hub_domain: str) -> bool:
    """Create the mirrors in the connected server's domain; False if it holds the origin streams."""
    for stream in MIRRORED:
        try:
            info = await js.stream_info(stream)
        except NotFoundError:
            info = None
        if info is not None:
            if info.config.mirror is None:
                log.info("%s is an origin stream here; no mirror needed", stream)
                return False
            continue
        await js.add_stream(
            api.StreamConfig(
                name=stream,
                mirror=api.StreamSource(name=stream, external=api.ExternalStream(api=f"$JS.{hub_domain}.API")),
                allow_rollup_hdrs=True,
                allow_direct=True,
                max_msgs_per_subject=names.PROMOTION_HISTORY if stream == names.PROMOTIONS_STREAM else -1,
            )
        )
        log.info("created mirror %s of the hub (domain %s)", stream, hub_domain)
    return True


async def purge_chunks(js: JetStreamContext, nuids: list[str], done: set[str]) -> int:
    """Purge from the mirrored bundle stream the chunks of the objects ``nuids`` (deleted on the hub), except
    those in ``done`` (purged already; updated here). Returns how many it purged."""
    purged = 0
    for nuid in nuids:
        if nuid and nuid not in done:
            await js.purge_stream(names.BUNDLES_STREAM, subject=names.chunk_subject(names.BUNDLES_BUCKET, nuid))
            done.add(nuid)
            purged += 1
    if purged:
        log.info("purged the chunks of %d objects the hub deleted from the mirror of %s", purged, names.BUNDLES_STREAM)
    return purged


# A mirror heard from its origin less than this long ago is in contact (the origin's heartbeats arrive
# every few seconds while nothing new is stored).
MIRROR_ACTIVE_S = 30.0


def behind(info: api.StreamInfo) -> str | None:
    """Why the mirrored stream ``info`` may not have what its origin has (messages still to copy, or no word
    from the origin lately), or None when it is caught up (or is the origin)."""
    m = info.mirror
    if m is None:
        return None
    if m.lag:
        return f"{m.lag} messages behind the hub"
    if m.active is None or m.active < 0 or m.active / 1e9 > MIRROR_ACTIVE_S:
        return "out of contact with the hub" + (
            "" if m.active is None or m.active < 0 else f" for {m.active / 1e9:.0f} s"
        )
    return None


async def sweep(js: JetStreamContext, done: set[str], orphans_after_s: float = ORPHANS_AFTER_S) -> dict[str, str]:
    """:func:`purge_chunks` of every object whose meta document in the mirror says it was deleted, then of
    the chunks no object names that are at least ``orphans_after_s`` old (:mod:`replicator.orphans`): what
    a replicator does when it starts, and now and then while it runs (it may have missed deletions and
    replacements while it was away). Chunks no object names are only purged while the mirror is caught up
    with the hub (:func:`behind`): otherwise an upload's meta document may still be on its way. Returns
    the live objects' nuids by name. It reads every object's meta document, so between sweeps the
    replicator purges the deletions and replacements it sees arrive."""
    objects = await list_objects(js, names.BUNDLES_STREAM, names.BUNDLES_BUCKET)
    await purge_chunks(js, [str(o.meta.get("nuid") or "") for o in objects if o.meta.get("deleted")], done)
    why = behind(await js.stream_info(names.BUNDLES_STREAM))
    if why:  # an upload's chunks may be here and its meta document not yet: nothing is an orphan for sure
        log.info("the mirror of %s is %s: chunks no object names are left for a later sweep", names.BUNDLES_STREAM, why)
    else:
        stray = await orphans.find(js, names.BUNDLES_STREAM, names.BUNDLES_BUCKET, objects, orphans_after_s)
        await orphans.purge(js, names.BUNDLES_STREAM, names.BUNDLES_BUCKET, [o for o in stray if o.nuid not in done])
    return {str(o.meta.get("name")): str(o.meta.get("nuid") or "") for o in objects if not o.meta.get("deleted")}
