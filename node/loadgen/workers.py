"""The load generator's processes, and merging what they measured.

A :class:`WorkerPool` starts ``n`` ``edgerank-loadgen`` processes once (Rust, hotpath/loadgen: a
Python client spent about 0.4 ms of CPU per request, on the cores the node under test also needs);
each opens its own HTTP/2 connections and then runs jobs given on its stdin. An open-loop job gets
its share of one shared Poisson schedule (dealt round-robin) and the common start time; a closed-loop
job runs one request at a time on the first process. Each job writes one record per request and
reports the CPU its process used, which the pool merges into one :class:`RunResult`.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

import grpc
import numpy as np

from node.gen.edgerank.v1 import ranker_pb2
from node.loadgen.requests import expects_full
from node.loadgen.result import RECORD_DTYPE, RunResult
from node.loadgen.schedule import poisson_schedule, split

START_LEAD_S = 0.3  # workers are idle; this is ample for them to pick the job up
DRAIN_S = 30.0  # an open-loop job waits this long after its last send for the answers
JOB_SLACK_S = 60.0
CONNECT_S = 30.0  # how long a worker retries connecting to the target
LOADGEN_ENV = "EDGERANK_LOADGEN_BIN"
# Built by `make install` (cargo, in the hotpath workspace).
DEFAULT_BINARY = Path(__file__).resolve().parents[2] / "hotpath" / "target" / "release" / "edgerank-loadgen"

_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def _code_name(code: int) -> str:
    return _CODE_NAMES.get(code, f"STATUS_{code}")


def _rung_name(rung: int) -> str:
    try:
        return ranker_pb2.ServedBy.Name(rung).removeprefix("SERVED_BY_")
    except ValueError:
        return str(rung)


class WorkerError(RuntimeError):
    """A load generator worker failed."""


def loadgen_binary() -> Path:
    """The ``edgerank-loadgen`` executable: ``$EDGERANK_LOADGEN_BIN``, else the workspace's release build."""
    path = Path(os.environ.get(LOADGEN_ENV) or DEFAULT_BINARY)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise WorkerError(f"load generator {path} not found: build it with `make install` (or set {LOADGEN_ENV})")
    return path


def write_requests(path: Path, requests: list[Any]) -> None:
    """The requests file ``edgerank-loadgen`` reads: each message as a little-endian u32 length and its bytes."""
    with open(path, "wb") as f:
        for r in requests:
            raw = r.SerializeToString()
            f.write(len(raw).to_bytes(4, "little"))
            f.write(raw)


class _Worker:
    """One ``edgerank-loadgen`` process: jobs as lines on its stdin, one answer line each on its stdout."""

    def __init__(self, argv: list[str], err_path: Path):
        self.err_path = err_path
        with open(err_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _why_dead(self) -> str:
        code = self.proc.wait(5.0)
        lines = self.err_path.read_text(errors="replace").strip().splitlines()
        return f"exit {code}" + (f": {lines[-1]}" if lines else "")

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise WorkerError(f"load generator worker {self.proc.pid} is gone ({self._why_dead()})") from None

    def answer(self, timeout_s: float, what: str) -> str:
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            pid = self.proc.pid
            raise WorkerError(f"load generator worker {pid} did not {what} within {timeout_s:.0f} s") from None
        if line is None:
            raise WorkerError(f"load generator worker {self.proc.pid} died ({self._why_dead()})")
        if line.startswith("error "):
            raise WorkerError(f"load generator worker failed: {line.removeprefix('error ')}")
        return line

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):  # it has exited already; wait() collects it
                self.proc.stdin.close()
        try:
            self.proc.wait(5.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5.0)  # the pipe is at its end once the process has exited
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Job:
    """A job given to some of a pool's workers: its records once they have all answered."""

    def __init__(self, pool: WorkerPool, jobs: list[tuple[_Worker, str, Path]], start: float, timeout_s: float):
        self.pool, self.start = pool, start
        self._jobs, self._timeout_s = jobs, timeout_s
        self._done: tuple[list[np.ndarray], float] | None = None

    def stop(self) -> None:
        """End the schedule at its next send (the workers still wait for what they sent)."""
        for w, _, _ in self._jobs:
            w.send("stop")

    def records(self) -> tuple[list[np.ndarray], float]:
        """Each worker's records (:data:`RECORD_DTYPE`; a worker's record ``k`` was request ``k`` of the
        pool's cycled requests) and the workers' CPU seconds; waits for the workers to finish."""
        if self._done is None:
            parts, cpu_s = [], 0.0
            for w, _, out in self._jobs:
                words = w.answer(self._timeout_s, "finish").split()
                if len(words) != 3 or words[0] != "done":
                    raise WorkerError(f"load generator worker answered {' '.join(words)!r} instead of done SENT CPU_S")
                records = np.fromfile(out, RECORD_DTYPE)
                if len(records) != int(words[1]):
                    raise WorkerError(f"load generator worker wrote {len(records)} records for {words[1]} requests")
                parts.append(records)
                cpu_s += float(words[2])
            self._done = (parts, cpu_s)
        return self._done

    def result(self) -> RunResult:
        """The records merged into one :class:`RunResult` (waits for the workers to finish)."""
        parts, cpu_s = self.records()
        result = RunResult(started=self.start, finished=self.start, cpu_s=cpu_s)
        for records in parts:
            result.add_records(records, self.pool.expect_full, _code_name, _rung_name)
        return result


class WorkerPool:
    def __init__(
        self,
        target: str,
        workers: int,
        requests: list[Any],
        connections: int = 4,
        timeout_s: float = 2.0,
        connect_s: float = CONNECT_S,
    ):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if not requests:
            raise ValueError("the load generator needs at least one request")
        binary = loadgen_binary()
        self._dir = tempfile.TemporaryDirectory(prefix="edgerank-loadgen-")
        self.workdir = Path(self._dir.name)
        self.expect_full = expects_full(requests)
        requests_file = self.workdir / "requests.bin"
        write_requests(requests_file, requests)
        argv = [
            str(binary),
            *("--target", target),
            *("--requests", str(requests_file)),
            *("--connections", str(connections)),
            *("--timeout-ms", str(max(1, round(timeout_s * 1000)))),
            *("--connect-ms", str(max(1, round(connect_s * 1000)))),
        ]
        self.workers: list[_Worker] = []
        try:
            for i in range(workers):
                self.workers.append(_Worker(argv, self.workdir / f"worker-{i}.err"))
            for w in self.workers:
                # The process retries for connect_s itself and then says why it could not connect.
                if (line := w.answer(connect_s + 10.0, f"connect to {target}")) != "ready":
                    raise WorkerError(f"load generator worker said {line!r} instead of ready")
        except BaseException:
            self.close()
            raise

    def _start(self, jobs: list[tuple[_Worker, str, Path]], start: float, timeout_s: float) -> Job:
        for w, line, _ in jobs:
            w.send(line)
        return Job(self, jobs, start, timeout_s)

    def run_open(self, rate: float, duration_s: float, seed: int = 0) -> RunResult:
        """Poisson arrivals at ``rate``/s for ``duration_s``, the schedule shared across the workers."""
        return self.start_open(rate, duration_s, seed).result()

    def start_open(self, rate: float, duration_s: float, seed: int = 0) -> Job:
        """:meth:`run_open` without waiting: the job runs until its schedule ends or :meth:`Job.stop`."""
        parts = split(poisson_schedule(rate, duration_s, seed), len(self.workers))
        start = time.monotonic() + START_LEAD_S
        jobs = []
        for i, (w, offsets) in enumerate(zip(self.workers, parts, strict=True)):
            offsets_file, out = self.workdir / f"offsets-{i}.f64", self.workdir / f"records-{i}.bin"
            np.asarray(offsets, "<f8").tofile(offsets_file)
            jobs.append((w, f"open {start!r} {offsets_file} {out} {DRAIN_S}", out))
        return self._start(jobs, start, duration_s + JOB_SLACK_S)

    def run_closed(self, duration_s: float) -> RunResult:
        """One request in flight, on the first worker only."""
        start = time.monotonic() + START_LEAD_S
        out = self.workdir / "records-closed.bin"
        job = (self.workers[0], f"closed {start!r} {duration_s!r} {out}", out)
        return self._start([job], start, duration_s + JOB_SLACK_S).result()

    def close(self) -> None:
        for w in self.workers:
            w.close()
        self._dir.cleanup()
