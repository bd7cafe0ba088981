"""``edgerank up``: a hub and two regions (replicator + node each) on loopback, for a local demo.

Runs ``edge_deploy/nats/*.conf`` unchanged (ports from :mod:`replicator.topology`),
publishes the newest bundle in ``--bundle-dir`` signed with a throwaway key,
promotes it in both regions, then starts ``edgerank replicate`` and
``edgerank serve --follow`` per region. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from replicator import topology
from replicator.errors import ReplicatorError

NODE_PORTS = {"eu-west": 50061, "us-east": 50062}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("up", help="start a hub and two regions on loopback (local demo)")
    parser.add_argument("--bundle-dir", type=Path, default=Path("bundles"), help="bundle root to publish")
    parser.add_argument("--nats-server", default=str(Path(sys.executable).parent / "nats-server"))
    parser.set_defaults(func=run)


def _wait_port(port: int, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise ReplicatorError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="edgerank-up-"))
    edgerank = [sys.executable, "-m", "node.cli"]
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(argv: list[str], log: str) -> None:
        with open(work / log, "wb") as out:
            procs.append(subprocess.Popen(argv, cwd=work, stdout=out, stderr=subprocess.STDOUT))

    try:
        spawn([args.nats_server, "-c", str(topology.CONF_DIR / "hub.conf")], "hub.log")
        _wait_port(topology.HUB.client)
        for r in topology.REGIONS:
            spawn([args.nats_server, "-c", str(topology.CONF_DIR / f"leaf-{r.name}.conf")], f"leaf-{r.name}.log")
            _wait_port(r.client)
        key = work / "trainer.key"
        hub = f"nats://127.0.0.1:{topology.HUB.client}"
        subprocess.run([*edgerank, "keygen", "--out", str(key)], check=True)
        subprocess.run(
            [*edgerank, "publish", str(args.bundle_dir.resolve()), "--key", str(key), "--nats-url", hub], check=True
        )
        from trainer.bundle import latest_version

        version = latest_version(args.bundle_dir)
        for r in topology.REGIONS:
            subprocess.run([*edgerank, "promote", "--region", r.name, str(version), "--nats-url", hub], check=True)
            leaf = f"nats://127.0.0.1:{r.client}"
            d = work / r.name
            spawn([*edgerank, "replicate", "--region", r.name, "--dir", str(d), "--nats-url", leaf,
                   "--trusted-key", f"{key}.pub"], f"replicate-{r.name}.log")  # fmt: skip
            spawn([*edgerank, "serve", "--follow", "--bundle-dir", str(d), "--region", r.name,
                   "--port", str(NODE_PORTS[r.name])], f"node-{r.name}.log")  # fmt: skip
        for r in topology.REGIONS:
            _wait_port(NODE_PORTS[r.name], timeout=60)
        print(f"edgerank: hub {hub}; logs and data in {work}", flush=True)
        for r in topology.REGIONS:
            print(f"  {r.name}: node 127.0.0.1:{NODE_PORTS[r.name]}, leaf nats://127.0.0.1:{r.client}", flush=True)
        print(f"  try: edgerank status --nats-url {hub}; Ctrl-C stops everything", flush=True)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        raise ReplicatorError(f"a process exited; see the logs in {work}")
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(10)
