"""A node started for a benchmark: ``edgerank serve`` in a subprocess, stopped with SIGTERM."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from node.local_servers import free_port, proc_status_kb

READY = re.compile(r"edgerank: serving (.+) on (\S+:\d+)")
START_TIMEOUT_S = 600.0
STOP_TIMEOUT_S = 30.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


class NodeStartError(RuntimeError):
    """The node did not start; the message carries the tail of its output."""


def stat_cpu_s(stat: Path) -> float:
    """User + system CPU seconds from a ``/proc/PID/stat`` or ``/proc/PID/task/TID/stat``; 0 once it is gone."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _cpu_s(pid: int) -> float:
    return stat_cpu_s(Path(f"/proc/{pid}/stat"))


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(x) for x in text.split()]


class LocalNode:
    """``edgerank serve --processes N`` on a free port, ready once it prints its serving line."""

    def __init__(
        self,
        bundle_dir: Path,
        processes: int,
        workers: int | None = None,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
    ):
        self.bundle_dir = bundle_dir
        self.processes = processes
        self.workers = workers
        self.env = dict(env or {})
        self.log_path = log_path
        self.target = ""
        self.serving = ""
        self.metrics_port = 0  # the node's Prometheus /metrics, on a free loopback port once started
        self._proc: subprocess.Popen[str] | None = None
        self._lines: list[str] = []
        self._reader: threading.Thread | None = None

    def start(self) -> Self:
        self.metrics_port = free_port()
        cmd = [
            sys.executable,
            "-c",
            "import sys; from node.cli import main; sys.exit(main(sys.argv[1:]))",
            "serve",
            "--bundle-dir",
            str(self.bundle_dir),
            "--port",
            "0",
            "--processes",
            str(self.processes),
            "--log-level",
            "WARNING",
            "--metrics-port",
            str(self.metrics_port),
        ]
        if self.workers is not None:
            cmd += ["--workers", str(self.workers)]
        self._proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **self.env},
        )
        lines: queue.Queue[str | None] = queue.Queue()
        self._read_output(lines)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                if self._proc.poll() is not None:
                    break
                continue
            if line is None:  # the node closed its output: it exited
                break
            if m := READY.search(line):
                self.serving, self.target = m.group(1), m.group(2)
                return self
        self.stop()
        tail = "\n".join(self._lines[-15:])
        raise NodeStartError(f"the node did not start serving ({self.bundle_dir}):\n{tail}")

    def _read_output(self, lines: queue.Queue[str | None]) -> None:
        """Read the node's output in a thread (so that it never blocks on a full pipe): keep the
        last lines for error messages, copy them to the log file, pass them on until it is ready."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        stdout = proc.stdout
        log = open(self.log_path, "a", encoding="utf-8") if self.log_path else None  # noqa: SIM115 - closed below

        def read() -> None:
            try:
                for line in stdout:
                    self._lines = [*self._lines[-50:], line.rstrip()]
                    if log is not None:
                        log.write(line)
                    if not self.target:
                        lines.put(line)
            finally:
                lines.put(None)
                if log is not None:
                    log.close()

        self._reader = threading.Thread(target=read, name="node-output", daemon=True)
        self._reader.start()

    @property
    def pids(self) -> list[int]:
        """The parent and its server processes."""
        if self._proc is None:
            return []
        return [self._proc.pid, *_children(self._proc.pid)]

    def rss_mib(self) -> dict[int, int]:
        """Resident memory of each of the node's processes, MiB."""
        out = {}
        for pid in self.pids:
            kb = proc_status_kb(pid, "VmRSS")
            if kb is not None:
                out[pid] = kb // 1024
        return out

    def cpu_s(self) -> float:
        """CPU seconds used so far by the node's processes."""
        return sum(self.cpu_by_process().values())

    def cpu_by_process(self) -> dict[int, float]:
        """CPU seconds used so far by each of the node's processes."""
        return {p: _cpu_s(p) for p in self.pids}

    def stop(self) -> int | None:
        """SIGTERM, wait, kill if needed; the exit code."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._reader is not None:
            self._reader.join(5.0)  # it ends at the end of the output
        if self._proc.stdout is not None and (self._reader is None or not self._reader.is_alive()):
            self._proc.stdout.close()
        return self._proc.returncode

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
