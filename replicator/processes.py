"""Child processes for the local launcher and the replication benchmark: spawn, wait, stop.

Every child runs ``edgerank`` with this interpreter, logs to its own file, and
gets the ``EDGERANK_*`` settings it is given, not the caller's (so a stray
environment variable cannot change what a benchmark measures).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from replicator.errors import ReplicatorError

EDGERANK = [sys.executable, "-c", "import sys; from node.cli import main; sys.exit(main())"]
STOP_TIMEOUT_S = 10.0


def child_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGERANK_")}
    env.update({f"EDGERANK_{k.upper()}": v for k, v in settings.items()})
    return env


class Children:
    """The processes one owner started; :meth:`stop` ends them all (SIGTERM, then SIGKILL)."""

    def __init__(self, logdir: Path):
        self.logdir = Path(logdir)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with open(self.logdir / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(
                argv, cwd=self.logdir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        self.procs[name] = proc
        return proc

    def edgerank(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        return self.spawn(name, [*EDGERANK, *args], env)

    def log(self, name: str) -> str:
        return (self.logdir / f"{name}.log").read_text(errors="replace")

    def exited(self) -> list[str]:
        return [name for name, p in self.procs.items() if p.poll() is not None]

    def stop(self) -> None:
        for p in reversed(list(self.procs.values())):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(STOP_TIMEOUT_S)


def wait_port(port: int, timeout: float = 20.0, children: Children | None = None) -> None:
    """Until something listens on 127.0.0.1:``port``; fails early if one of ``children`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if children is not None and children.exited():
            raise ReplicatorError(f"{', '.join(children.exited())} exited; see the logs in {children.logdir}")
        time.sleep(0.05)
    raise ReplicatorError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")
