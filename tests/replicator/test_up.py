"""``edgerank up`` (edge_deploy/local/up.py) for real: both regions serve, SIGTERM stops everything.

It runs the fixed ports of ``edge_deploy/nats`` (4222-4224, 7422, 8222-8224) and
the nodes on 50061-50062, so it fails (rather than skips) when something else holds them.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from node.cli import main
from replicator import launcher, topology
from tests.replicator.crash_helpers import rank_version
from tests.replicator.harness import release, wait_for

REPO = Path(__file__).resolve().parents[2]
PORTS = [
    topology.HUB.client,
    topology.HUB_LEAF_PORT,
    *(r.client for r in topology.REGIONS),
    *launcher.NODE_PORTS.values(),
]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_up_serves_both_regions_and_stops_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    busy = [p for p in PORTS if listening(p)]
    assert not busy, f"ports {busy} are taken; edgerank up needs them"
    version = release(tmp_path / "bundles", "up", 9).name
    out = tmp_path / "up.out"
    with open(out, "wb") as f:
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "edge_deploy" / "local" / "up.py"), "--bundle-dir", str(tmp_path / "bundles")],
            cwd=tmp_path, stdout=f, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(
            lambda: "served in both regions" in out.read_text() or proc.poll() is not None,
            timeout=120,
            what="edgerank up ready",
        )
        assert proc.poll() is None, out.read_text()[-3000:]
        for port in launcher.NODE_PORTS.values():
            assert rank_version(f"127.0.0.1:{port}") == version
        # `edgerank status` against the hub: each region's champion, and its node serving it (the node's
        # report, copied to the hub by the region's replicator through its leaf).
        seen: list[Any] = []

        def status_shows_nodes() -> bool:
            time.sleep(0.5)
            assert main(["status", "--json", "--nats-url", f"nats://127.0.0.1:{topology.HUB.client}"]) == 0
            s = json.loads(capsys.readouterr().out)
            seen[:] = [{r: (v["champion"], [(n["serving"], n["health"]) for n in v["nodes"]]) for r, v in s.items()}]
            return seen[0] == {r.name: (version, [(version, "SERVING")]) for r in topology.REGIONS}

        try:
            wait_for(status_shows_nodes, timeout=30, what="edgerank status showing both regions' nodes")
        except AssertionError as e:
            raise AssertionError(f"{e}; last seen {seen}") from None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 130, out.read_text()[-3000:]
    finally:
        if proc.poll() is None:  # a failed check: stop it as an operator would, so that its servers stop too
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    assert "edgerank: up: stopped" in out.read_text()
    wait_for(lambda: not any(listening(p) for p in PORTS), timeout=10, what="every port released")
