"""``edgerank serve --processes 2``: two server processes on one port, stopped together by SIGTERM."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc

from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc
from node.loadgen.local_node import _children
from node.local_servers import free_port

READY = re.compile(r"edgerank: serving (\S+) on (\S+:\d+) \(2 processes\)")


def _wait_for_line(proc: subprocess.Popen[str], pattern: re.Pattern[str], timeout_s: float) -> re.Match[str]:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sel.select(timeout=0.5):
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if m := pattern.search(line):
                return m
    raise AssertionError(f"no line matching {pattern.pattern!r}; output:\n{''.join(seen)}")


def test_two_processes_answer_on_one_port_and_stop_on_sigterm(small_bundle: Path) -> None:
    metrics_port = free_port()
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from node.cli import main; sys.exit(main(sys.argv[1:]))",
            "serve",
            "--bundle-dir",
            str(small_bundle),
            "--port",
            "0",
            "--processes",
            "2",
            "--workers",
            "2",
            "--log-level",
            "WARNING",
            "--host",
            "127.0.0.1",
            "--metrics-port",
            str(metrics_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "EDGERANK_GRACE_S": "2"},
    ) as proc:
        _check_serving_then_stop(proc, metrics_port)


def _check_serving_then_stop(proc: subprocess.Popen[str], metrics_port: int) -> None:
    try:
        target = _wait_for_line(proc, READY, 60).group(2)
        children = [p for p in _children(proc.pid) if "serve_child" in _cmdline(p) or _is_spawned_python(p)]
        servers = [p for p in children if _listens(p)]
        assert len(servers) == 2, f"children {children}, listening {servers}"
        # Many connections: the kernel spreads them over both processes; every one is answered.
        for k in range(8):
            with grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
                r = ranker_pb2_grpc.RankerStub(ch).Rank(
                    ranker_pb2.RankRequest(user_id=f"u{k:03d}", num_results=5), timeout=10
                )
                assert len(r.items) == 5 and r.served_by == ranker_pb2.SERVED_BY_FULL
        # One /metrics for both processes: their counters and histograms summed.
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as page:
            text = page.read().decode()
        assert 'edgerank_rank_requests_total{rung="FULL"} 8.0' in text, text
        assert 'edgerank_stage_seconds_count{stage="retrieve"} 8.0' in text
        assert re.search(r"edgerank_bundle_info\{[^}]*\} 1\.0", text)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        for p in servers:
            assert not Path(f"/proc/{p}").exists() or _is_zombie(p), f"server process {p} outlived the parent"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except FileNotFoundError:
        return ""


def _is_spawned_python(pid: int) -> bool:
    return "multiprocessing" in _cmdline(pid) and "spawn_main" in _cmdline(pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _listens(pid: int) -> bool:
    """Whether the process holds a listening TCP socket (state 0A in /proc/net/tcp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except FileNotFoundError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:
                return True
    return False
