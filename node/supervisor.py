"""Several server processes on one port: ``edgerank serve --processes N``.

One Python process serves one core at best (the GIL), so a node runs a
process per core. Each child is a whole node (it loads, verifies and warms
the bundle itself, and has its own gRPC thread pool of ``workers``); all bind
the same port with ``SO_REUSEPORT`` and the kernel spreads connections across
them. The parent only starts, watches and stops them:

* it reserves the port first (a free one when ``port`` is 0), so that every
  child binds the same one, and prints one line once all children are warm;
* SIGTERM or SIGINT to the parent is forwarded to each child as SIGTERM; each
  child stops gracefully (NOT_SERVING, in-flight requests finish within
  ``grace_s``); a child still alive ``grace_s + STOP_SLACK_S`` later is killed;
* a child that fails to start, or dies, stops the others, and the parent
  exits with an error: the orchestrator restarts the node as a whole;
* with ``metrics_port`` set, the children write their metrics to files in a
  directory of the parent's (``PROMETHEUS_MULTIPROC_DIR``) instead of each
  binding the port, and the parent serves their sum on it
  (:func:`node.metrics.serve_processes`).

Children are started with multiprocessing's ``spawn`` (not ``fork``: gRPC's
threads do not survive a fork).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import shutil
import signal
import socket
import tempfile
import threading
import time
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from types import FrameType
from typing import Any

from node.settings import Settings
from trainer.bundle import BundleError

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STOP_SLACK_S = 10.0
START_TIMEOUT_S = 600.0
POLL_S = 0.2


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (a free port when 0) with SO_REUSEPORT, not listening.

    Holding it keeps another program from taking the port before the children bind it; a
    socket that does not listen receives no connections.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def serve_child(settings: Settings, follow: bool, events: Queue[tuple[str, int, str]]) -> None:
    """One child: a whole node on the shared port, until SIGTERM."""
    from node import logs
    from node.server import Node

    logs.configure(settings.log_level)
    node = Node(settings)
    try:
        node.start(load=False)
        if follow:
            from node.assignment import AssignmentWatcher

            watcher = AssignmentWatcher(node, settings.bundle_dir).start()
            events.put(("ready", mp.current_process().pid or 0, "following"))
            try:
                node.serve_until_signalled()
            finally:
                watcher.stop()
            return
        node.load_bundle()
        events.put(("ready", mp.current_process().pid or 0, node.holder.snapshot().version))
        node.serve_until_signalled()
    except BaseException as e:
        events.put(("failed", mp.current_process().pid or 0, f"{type(e).__name__}: {e}"))
        raise
    finally:
        node.stop()


class Supervisor:
    """Starts ``settings.processes`` children on one port and stops them together."""

    def __init__(self, settings: Settings, follow: bool = False):
        self.settings = settings
        self.follow = follow
        self._ctx = mp.get_context("spawn")
        self._events: Queue[tuple[str, int, str]] = self._ctx.Queue()
        self.children: list[BaseProcess] = []
        self.port = 0
        self._stop = threading.Event()
        self._metrics_dir: str | None = None

    def _share_metrics(self) -> Settings:
        """Children's settings: with a metrics port, they write to a directory the parent serves from."""
        s = self.settings
        if not s.metrics_port:
            return s
        self._metrics_dir = tempfile.mkdtemp(prefix="edgerank-metrics-")
        # Read by prometheus_client when a child imports it (spawn: a fresh interpreter, this environment).
        os.environ[MULTIPROC_ENV] = self._metrics_dir
        from node import metrics

        metrics.serve_processes(s.metrics_port, s.host, self._metrics_dir)
        log.info("metrics of %d processes on http://%s:%d/metrics", s.processes, s.host, s.metrics_port)
        return s.replace(metrics_port=0)

    def start(self) -> str:
        """Start the children and wait until all are warm; returns what they serve."""
        s = self.settings
        reservation = reserve_port(s.host, s.port)
        try:
            self.port = int(reservation.getsockname()[1])
            child_settings = self._share_metrics().replace(port=self.port)
            for _ in range(s.processes):
                proc = self._ctx.Process(
                    target=serve_child, args=(child_settings, self.follow, self._events), daemon=False
                )
                proc.start()
                self.children.append(proc)
            return self._wait_ready()
        finally:
            reservation.close()

    def _wait_ready(self) -> str:
        ready: dict[int, str] = {}
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(ready) < len(self.children):
            if self._stop.is_set():
                raise KeyboardInterrupt
            if time.monotonic() > deadline:
                self.stop()
                raise BundleError(f"server processes not ready after {START_TIMEOUT_S:.0f} s")
            try:
                kind, pid, detail = self._events.get(timeout=POLL_S)
            except queue.Empty:
                dead = [p for p in self.children if p.exitcode is not None]
                if dead:
                    self.stop()
                    raise BundleError(
                        f"server process {dead[0].pid} exited with {dead[0].exitcode} while starting"
                    ) from None
                continue
            if kind == "failed":
                self.stop()
                raise BundleError(f"server process {pid} failed to start: {detail}")
            ready[pid] = detail
        return ", ".join(sorted(set(ready.values())))

    def wait(self) -> int:
        """Block until SIGTERM/SIGINT (forwarded to the children) or a child's death; stop all."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("received %s; stopping %d server processes", signal.Signals(signum).name, len(self.children))
            self._stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)
        while not self._stop.wait(POLL_S):
            dead = [p for p in self.children if p.exitcode is not None]
            if dead:
                log.error("server process %d exited with %s; stopping the node", dead[0].pid, dead[0].exitcode)
                self.stop()
                return 1
        return self.stop()

    def stop(self) -> int:
        """SIGTERM every live child, wait ``grace_s`` plus slack, kill what is left; 0 if all exited 0."""
        for proc in self.children:
            if proc.exitcode is None and proc.pid is not None:
                proc.terminate()
        deadline = time.monotonic() + self.settings.grace_s + STOP_SLACK_S
        for proc in self.children:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.exitcode is None:
                log.error("server process %s did not stop in time; killing it", proc.pid)
                proc.kill()
                proc.join()
        if self._metrics_dir is not None:
            from node import metrics

            for proc in self.children:
                if proc.pid is not None:
                    metrics.process_exited(proc.pid, self._metrics_dir)
            try:
                shutil.rmtree(self._metrics_dir)
            except OSError as e:
                log.warning("cannot remove the metrics directory %s: %s", self._metrics_dir, e)
            os.environ.pop(MULTIPROC_ENV, None)
            self._metrics_dir = None
        codes: list[Any] = [p.exitcode for p in self.children]
        return 0 if all(c == 0 for c in codes) else 1
