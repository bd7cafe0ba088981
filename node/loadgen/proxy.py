"""A loopback TCP proxy that adds latency or goes down, for fault drills (Redis slow, Redis down).

Every chunk a client sends is held ``delay_ms`` before it is forwarded (in
order, without serialising pipelined requests), so each round trip through
the proxy takes ``delay_ms`` longer. Replies pass straight through. When
``down``, the proxy closes every connection and closes new ones as soon as
they arrive, as an unreachable server would look to a client with a pool.
It runs its own asyncio loop in a background thread; the setters are safe to
call from any thread.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Self

CHUNK = 1 << 16


class DelayProxy:
    def __init__(self, upstream_host: str, upstream_port: int, delay_ms: float = 0.0, host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = 0
        self._delay_s = delay_ms / 1000.0
        self._down = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- control, from any thread -------------------------------------------------
    @property
    def delay_ms(self) -> float:
        return self._delay_s * 1000.0

    def set_delay(self, delay_ms: float) -> None:
        if delay_ms < 0:
            raise ValueError(f"delay must not be negative, got {delay_ms}")
        self._delay_s = delay_ms / 1000.0

    def set_down(self, down: bool) -> None:
        self._down = down
        if down and self._loop is not None:
            self._loop.call_soon_threadsafe(self._close_all)

    @property
    def url_host_port(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="delay-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(10.0)
        if self._error is not None:
            raise OSError(f"proxy could not start: {self._error}") from self._error
        if not self.port:
            raise OSError("proxy did not start within 10 s")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return
        loop.call_soon_threadsafe(self._shutdown)
        self._thread.join(10.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the loop's side -----------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self._server = loop.run_until_complete(asyncio.start_server(self._handle, self.host, 0))
            self.port = int(self._server.sockets[0].getsockname()[1])
        except OSError as e:
            self._error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            # Connections still open are cancelled and awaited, so that none is left pending.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        self._close_all()
        assert self._loop is not None
        self._loop.stop()

    def _close_all(self) -> None:
        for w in list(self._writers):
            w.close()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._down:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def client_to_queue() -> None:
            while data := await reader.read(CHUNK):
                await queue.put((loop.time() + self._delay_s, data))
            await queue.put((0.0, b""))

        async def queue_to_upstream() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def upstream_to_client() -> None:
            while data := await up_reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
            writer.close()

        tasks = [asyncio.create_task(c()) for c in (client_to_queue, queue_to_upstream, upstream_to_client)]
        try:
            await asyncio.gather(*tasks)
        except (ConnectionError, OSError):
            # One side went away (or we closed it, going down): close both.
            for t in tasks:
                t.cancel()
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()
