"""The node's one NATS connection, on an asyncio loop in a background thread.

Synchronous code (gRPC handlers, the exposure thread) runs coroutines on the
loop with :meth:`NatsLink.run`. The link connects in the background and keeps
reconnecting, so that a node starts and serves while NATS is down; callers ask
:meth:`NatsLink.connected` and spool instead of waiting. On every (re)connect
it makes sure the streams exist.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

log = logging.getLogger(__name__)

T = TypeVar("T")
RECONNECT_WAIT_S = 0.2
# Long enough to cover an outage and the replay after it: a re-sent message is dropped as a duplicate.
DUPLICATE_WINDOW_S = 3600.0


@dataclass(frozen=True)
class StreamSpec:
    name: str
    prefix: str  # subjects are "<prefix>.<region>"

    def subject(self, region: str) -> str:
        return f"{self.prefix}.{region}"


EVENTS = StreamSpec("EDGERANK_EVENTS", "edgerank.events")
EXPOSURES = StreamSpec("EDGERANK_EXPOSURES", "edgerank.exposures")


async def ensure_stream(js: JetStreamContext, spec: StreamSpec) -> None:
    """Create the stream if it does not exist (file storage, a long duplicate window)."""
    try:
        await js.stream_info(spec.name)
    except NotFoundError:
        await js.add_stream(name=spec.name, subjects=[f"{spec.prefix}.>"], duplicate_window=DUPLICATE_WINDOW_S)
        log.info("created stream %s", spec.name)


class NatsLink:
    def __init__(self, url: str, timeout_s: float, streams: tuple[StreamSpec, ...] = (EVENTS, EXPOSURES)):
        self.url, self.timeout_s, self.streams = url, timeout_s, streams
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="nats-link", daemon=True)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._ready = False
        self._closed = False
        self.changed = threading.Condition()

    def start(self) -> NatsLink:
        self._thread.start()
        self.submit(self._connect_forever())
        return self

    # -- for synchronous callers ---------------------------------------------------
    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
        return self.submit(coro).result(timeout_s)

    def connected(self) -> bool:
        """Connected, with the streams in place."""
        return self._ready and self._nc is not None and self._nc.is_connected

    def wait_connected(self, timeout_s: float) -> bool:
        with self.changed:
            return self.changed.wait_for(self.connected, timeout_s)

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise ConnectionError("not connected to NATS")
        return self._js

    # -- on the loop ----------------------------------------------------------------
    def _set_ready(self, ready: bool) -> None:
        with self.changed:
            self._ready = ready
            self.changed.notify_all()

    async def _connect_forever(self) -> None:
        while not self._closed:
            try:
                self._nc = await nats.connect(
                    servers=[self.url],
                    name="edgerank-node",
                    connect_timeout=self.timeout_s,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=RECONNECT_WAIT_S,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                )
                self._js = self._nc.jetstream(timeout=self.timeout_s)
                await self._on_reconnected()
                return
            except Exception as e:
                log.warning("cannot connect to NATS at %s (%s: %s); retrying", self.url, type(e).__name__, e)
                await asyncio.sleep(RECONNECT_WAIT_S * 5)

    async def _on_error(self, e: Exception) -> None:
        log.debug("NATS: %s: %s", type(e).__name__, e)

    async def _on_disconnected(self) -> None:
        if not self._closed:
            log.warning("NATS disconnected; spooling to disk")
        self._set_ready(False)

    async def _on_reconnected(self) -> None:
        try:
            for spec in self.streams:
                await ensure_stream(self.js, spec)
        except Exception as e:
            log.warning("NATS streams not ready (%s: %s); retrying", type(e).__name__, e)
            self.loop.call_later(RECONNECT_WAIT_S * 5, lambda: self.submit(self._on_reconnected()))
            return
        log.info("NATS connected at %s", self.url)
        self._set_ready(True)

    def close(self) -> None:
        self._closed = True
        if self._nc is not None and not self._nc.is_closed:
            try:
                self.run(self._nc.close(), self.timeout_s + 1)
            except Exception as e:
                log.warning("closing NATS: %s: %s", type(e).__name__, e)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()
