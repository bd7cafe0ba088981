"""The delaying TCP proxy: it adds its delay to each round trip, can change it, and can go down."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from node.loadgen.proxy import DelayProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def _round_trips_ms(port: int, n: int = 5) -> list[float]:
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for k in range(n):
            payload = f"ping {k}\n".encode()
            t0 = time.perf_counter()
            sock.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = sock.recv(4096)
                assert chunk, "connection closed"
                got += chunk
            out.append((time.perf_counter() - t0) * 1e3)
            assert got == payload
    return out


def test_adds_the_configured_delay_to_each_round_trip(echo_port: int) -> None:
    with DelayProxy("127.0.0.1", echo_port, delay_ms=40) as proxy:
        delayed = _round_trips_ms(proxy.port)
        proxy.set_delay(0)
        undelayed = _round_trips_ms(proxy.port)
    assert min(delayed) >= 40.0
    assert min(undelayed) < 20.0


def test_pipelined_requests_are_not_serialised(echo_port: int) -> None:
    with (
        DelayProxy("127.0.0.1", echo_port, delay_ms=100) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock,
    ):
        t0 = time.perf_counter()
        for k in range(5):
            sock.sendall(f"{k}".encode())
            time.sleep(0.005)
        got = b""
        while len(got) < 5:
            got += sock.recv(4096)
        elapsed_ms = (time.perf_counter() - t0) * 1e3
    assert got == b"01234"
    # Five writes 5 ms apart, each held 100 ms: about 120 ms in all, not 500.
    assert 100.0 <= elapsed_ms < 300.0


def test_down_closes_connections_and_refuses_new_ones(echo_port: int) -> None:
    with DelayProxy("127.0.0.1", echo_port) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.sendall(b"x")
            assert sock.recv(10) == b"x"
            proxy.set_down(True)
            time.sleep(0.1)
            assert sock.recv(10) == b""  # closed by the proxy
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            assert sock.recv(10) == b""
        proxy.set_down(False)
        assert len(_round_trips_ms(proxy.port, 1)) == 1
