"""A hub and region leaf nodes (real nats-server processes) on free loopback ports.

Each server runs the config that :mod:`replicator.topology` renders (the text
of ``edge_deploy/nats``, with other ports), so whoever starts one (the tests,
``edgerank bench replication``) runs the real topology: JetStream domains, leaf
connections, mirrors across domains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from node.local_servers import LOOPBACK, NatsServer, find_nats_server, free_port
from replicator import topology

REGIONS = tuple(r.name for r in topology.REGIONS)


class ConfNatsServer(NatsServer):
    """nats-server run from a config file, with ports fixed before the first start."""

    def __init__(self, workdir: Path, name: str, client: int, monitor: int, conf: str, niceness: int = 0) -> None:
        super().__init__(find_nats_server(), workdir, niceness)
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self.port, self.monitor_port = client, monitor
        self.conf_path = workdir / f"{name}.conf"
        self.conf_path.write_text(conf)

    def argv(self) -> list[str]:
        return [str(self.binary), "-c", str(self.conf_path)]


@dataclass
class Cluster:
    hub: ConfNatsServer
    leaves: dict[str, ConfNatsServer]

    def stop(self) -> None:
        for server in (*self.leaves.values(), self.hub):
            server.stop()


def _ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return list(ports)


def start_cluster(
    workdir: Path, regions: tuple[str, ...] = REGIONS, niceness: int = 0, max_file_store: str = topology.MAX_FILE_STORE
) -> Cluster:
    """Start the hub, then one leaf per region (each at CPU ``niceness``, each with a JetStream store of
    ``max_file_store``); stops what it started if one fails."""
    p = _ports(3 + 2 * len(regions))
    hub_ports = topology.ServerPorts(topology.HUB_DOMAIN, p[0], p[1])
    hub_conf = topology.hub_conf(hub_ports, p[2], str(workdir / "js-hub"), max_file_store)
    hub = ConfNatsServer(workdir, "hub", p[0], p[1], hub_conf, niceness)
    cluster = Cluster(hub, {})
    try:
        hub.start()
        for i, region in enumerate(regions):
            client, monitor = p[3 + 2 * i], p[4 + 2 * i]
            ports = topology.ServerPorts(region, client, monitor)
            conf = topology.leaf_conf(ports, p[2], str(workdir / f"js-{region}"), max_file_store)
            leaf = ConfNatsServer(workdir, f"leaf-{region}", client, monitor, conf, niceness)
            cluster.leaves[region] = leaf
            leaf.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def url(server: NatsServer) -> str:
    return f"nats://{LOOPBACK}:{server.port}"
