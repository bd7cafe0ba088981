"""Reading a JetStream subject from the start, for the trainer and for checks.

An ephemeral pull consumer with no acks reads every stored message of one
subject, in stream order, with its ``Nats-Msg-Id``.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

FETCH = 500
FETCH_TIMEOUT_S = 5.0


class Message(NamedTuple):
    msg_id: str
    data: bytes


async def read_subject_async(url: str, stream: str, subject: str, timeout_s: float = 5.0) -> list[Message]:
    nc = await nats.connect(servers=[url], connect_timeout=timeout_s, allow_reconnect=False)
    try:
        js = nc.jetstream(timeout=timeout_s)
        info = await js.stream_info(stream, subjects_filter=subject)
        total = int(sum((info.state.subjects or {}).values()))
        out: list[Message] = []
        if total == 0:
            return out
        sub = await js.pull_subscribe(
            subject,
            stream=stream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
        )
        try:
            while len(out) < total:
                msgs = await sub.fetch(batch=min(FETCH, total - len(out)), timeout=FETCH_TIMEOUT_S)
                out.extend(Message((m.headers or {}).get("Nats-Msg-Id", ""), m.data) for m in msgs)
        finally:
            await sub.unsubscribe()
        return out
    finally:
        await nc.close()


def read_subject(url: str, stream: str, subject: str) -> list[Message]:
    """Every message stored on ``subject`` (in ``stream``; wildcards allowed), oldest first."""
    return asyncio.run(read_subject_async(url, stream, subject))
