"""Mirrors of the hub's promotion and bundle buckets on a region's leaf node.

A mirror lives in the region's own JetStream domain and sources the hub's
stream through ``$JS.<hub domain>.API``, so the region can read every
promotion and every bundle file while cut off from the hub. When the region's
server is the hub itself (one server, as in a single-region setup or a test),
the origin streams are used directly.
"""

from __future__ import annotations

import logging

from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from replicator import names

log = logging.getLogger(__name__)

MIRRORED = (names.PROMOTIONS_STREAM, names.BUNDLES_STREAM)


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
