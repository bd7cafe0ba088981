"""A key-value bucket of a named JetStream domain, writable from any server of the topology.

A KV write is a publish to ``$KV.<bucket>.<key>``, caught by the bucket's stream. From a region's leaf
that subject reaches no stream: the leaf has its own JetStream domain, and the hub's streams do not
listen across it (the write fails with "no response from stream"). ``nats.go`` sends its writes
through the domain's API prefix instead (``$JS.<domain>.API.$KV.<bucket>.<key>``) whenever its
context names a domain; nats-py 2.16 does not. :func:`key_value` does it here: reads are nats-py's
own (they already go through the domain's API), only the publishes of ``put``, ``create``,
``update``, ``delete`` and ``purge`` are addressed through the prefix. On the hub itself both forms
reach the stream.
"""

from __future__ import annotations

from typing import Any, cast

from nats.js import JetStreamContext
from nats.js.errors import BadBucketError, BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue


class _DomainWrites:
    """``js`` with its publishes sent to ``$JS.<domain>.API.<subject>``; everything else is ``js``'s."""

    def __init__(self, js: JetStreamContext, domain: str):
        self._js = js
        self._prefix = f"$JS.{domain}.API."

    async def publish(self, subject: str, *args: Any, **kwargs: Any) -> Any:
        return await self._js.publish(self._prefix + subject, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._js, name)


async def key_value(js: JetStreamContext, bucket: str, domain: str | None) -> KeyValue:
    """``bucket`` as ``js.key_value`` opens it; with ``domain`` (the domain ``js`` was made for), its writes
    go through that domain's API prefix, so that they land from a leaf as from the hub."""
    if not domain:
        return await js.key_value(bucket)
    stream = f"KV_{bucket}"
    try:
        info = await js.stream_info(stream)
    except NotFoundError as e:
        raise BucketNotFoundError from e
    if info.config.max_msgs_per_subject < 1:
        raise BadBucketError
    writes = cast(JetStreamContext, _DomainWrites(js, domain))
    return KeyValue(name=bucket, stream=stream, pre=f"$KV.{bucket}.", js=writes, direct=bool(info.config.allow_direct))
