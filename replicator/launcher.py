"""``edgerank up``: a hub and two regions (replicator + node each) on loopback, for a local demo.

Runs ``edge_deploy/nats/*.conf`` unchanged (ports from :mod:`replicator.topology`),
publishes the newest bundle in ``--bundle-dir`` signed with a throwaway key,
promotes it in both regions, then starts ``edgerank replicate`` and
``edgerank serve --follow`` per region, and reports ready once both nodes answer
``Rank`` from that version. Ctrl-C or SIGTERM stops everything it started.
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
from replicator.processes import EDGERANK, Children, child_env, wait_port

NODE_PORTS = {"eu-west": 50061, "us-east": 50062}
READY_TIMEOUT_S = 120.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("up", help="start a hub and two regions on loopback (local demo)")
    parser.add_argument("--bundle-dir", type=Path, default=Path("bundles"), help="bundle root to publish")
    parser.add_argument("--nats-server", default=None, help="nats-server binary (default: the one beside Python)")
    parser.set_defaults(func=run)


def _serving(port: int, version: str) -> bool:
    import grpc

    from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            r = ranker_pb2_grpc.RankerStub(channel).Rank(ranker_pb2.RankRequest(user_id="up", num_results=1), timeout=2)
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return False
            raise
    return bool(r.bundle_version == version)


def run(args: argparse.Namespace) -> int:
    from node.local_servers import find_nats_server
    from trainer import bundle as bundle_format

    bundle_dir = bundle_format.resolve(args.bundle_dir.resolve())  # no bundle: fail before starting anything
    version = bundle_dir.name
    nats_server = args.nats_server or str(find_nats_server())
    work = Path(tempfile.mkdtemp(prefix="edgerank-up-"))
    children = Children(work)
    try:  # SIGTERM unwinds through the finally as Ctrl-C does (node.cli.sigterm_interrupts)
        children.spawn("hub", [nats_server, "-c", str(topology.CONF_DIR / "hub.conf")])
        wait_port(topology.HUB.client, children=children)
        for r in topology.REGIONS:
            children.spawn(f"leaf-{r.name}", [nats_server, "-c", str(topology.CONF_DIR / f"leaf-{r.name}.conf")])
            wait_port(r.client, children=children)
        key = work / "trainer.key"
        hub = f"nats://127.0.0.1:{topology.HUB.client}"
        env = child_env()

        def edgerank(*argv: str) -> None:
            subprocess.run([*EDGERANK, *argv], check=True, env=env, cwd=work, stdout=subprocess.DEVNULL)

        edgerank("keygen", "--out", str(key))
        edgerank("publish", str(bundle_dir), "--key", str(key), "--nats-url", hub, "--json")
        for r in topology.REGIONS:
            edgerank("promote", "--region", r.name, version, "--nats-url", hub)
            d = work / r.name
            leaf = f"nats://127.0.0.1:{r.client}"
            children.edgerank(f"replicate-{r.name}", ["replicate", "--region", r.name, "--dir", str(d),
                              "--nats-url", leaf, "--trusted-key", f"{key}.pub"], env)  # fmt: skip
            children.edgerank(f"node-{r.name}", ["serve", "--follow", "--bundle-dir", str(d), "--region", r.name,
                              "--host", "127.0.0.1", "--port", str(NODE_PORTS[r.name])], env)  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT_S
        for r in topology.REGIONS:
            wait_port(NODE_PORTS[r.name], timeout=READY_TIMEOUT_S, children=children)
            while not _serving(NODE_PORTS[r.name], version):
                if children.exited() or time.monotonic() > deadline:
                    raise ReplicatorError(f"{r.name} is not serving {version}; see the logs in {work}")
                time.sleep(0.1)
        print(f"edgerank: up: {version} served in both regions; hub {hub}; logs and data in {work}", flush=True)
        for r in topology.REGIONS:
            print(f"  {r.name}: node 127.0.0.1:{NODE_PORTS[r.name]}, leaf nats://127.0.0.1:{r.client}", flush=True)
        print(f"  try: edgerank status --nats-url {hub}; Ctrl-C stops everything", flush=True)
        while not children.exited():
            time.sleep(0.5)
        raise ReplicatorError(f"{', '.join(children.exited())} exited; see the logs in {work}")
    finally:
        children.stop()
        print("edgerank: up: stopped", file=sys.stderr, flush=True)
