"""No-loss delivery of records to JetStream: published and acked, or spooled on disk and replayed.

:meth:`DurablePublisher.publish` returns once every record is either acked
by JetStream or fsync'd into the spool. Each record carries its id as
``Nats-Msg-Id``, so a publish that timed out but landed, and its replay, are
stored once. While the spool holds records, new ones go behind them, so that
the stream receives them in order. A task on the link's loop replays the spool
whenever NATS is connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from node import metrics
from node.nats_link import NatsLink
from node.spool import Record, Spool

log = logging.getLogger(__name__)

REPLAY_CHUNK = 256
IDLE_POLL_S = 0.2


class DurablePublisher:
    def __init__(self, link: NatsLink, spool: Spool, kind: str):
        self.link, self.spool, self.kind = link, spool, kind
        self._wake: asyncio.Event | None = None
        self._task = link.submit(self._replay_forever())
        self.published = 0
        self.spooled = 0
        self._gauge()

    def _gauge(self) -> None:
        metrics.SPOOL_DEPTH.labels(self.kind).set(self.spool.pending())

    async def _publish_all(self, records: Sequence[Record]) -> None:
        js, timeout = self.link.js, self.link.timeout_s
        acks = await asyncio.gather(
            *(js.publish(r.subject, r.payload, timeout=timeout, headers={"Nats-Msg-Id": r.msg_id}) for r in records)
        )
        if len(acks) != len(records):
            raise RuntimeError(f"{len(acks)} acks for {len(records)} records")

    def publish(self, records: Sequence[Record]) -> bool:
        """Deliver ``records``; True if JetStream acked them, False if they were spooled."""
        if not records:
            return True
        if self.spool.pending() == 0 and self.link.connected():
            try:
                self.link.run(self._publish_all(records), self.link.timeout_s * 2)
                self.published += len(records)
                return True
            except Exception as e:
                # Some may have landed: their msg ids make the replay a no-op for them.
                log.warning("%s: publish failed (%s: %s); spooling %d", self.kind, type(e).__name__, e, len(records))
        self.spool_now(records)
        return False

    def spool_now(self, records: Sequence[Record]) -> None:
        self.spool.append(records)
        self.spooled += len(records)
        self._gauge()
        self.link.loop.call_soon_threadsafe(self._poke)

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _replay_forever(self) -> None:
        self._wake = asyncio.Event()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), IDLE_POLL_S)
            self._wake.clear()
            while self.spool.pending() and self.link.connected():
                records, end = self.spool.read(REPLAY_CHUNK)
                try:
                    await self._publish_all(records)
                except Exception as e:
                    log.warning("%s: replay failed (%s: %s); will retry", self.kind, type(e).__name__, e)
                    await asyncio.sleep(IDLE_POLL_S)
                    break
                self.spool.commit(end, len(records))
                self._gauge()
                log.info("%s: replayed %d spooled records, %d left", self.kind, len(records), self.spool.pending())

    def drain(self, timeout_s: float) -> bool:
        """Wait until the spool is empty (for tests and a graceful stop); True if it is."""
        deadline = time.monotonic() + timeout_s
        while self.spool.pending() and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.spool.pending() == 0

    def close(self) -> None:
        self._task.cancel()
        self.spool.close()
