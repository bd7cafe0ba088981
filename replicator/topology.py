"""The NATS topology: a hub and one leaf node per region, each its own JetStream domain.

``edge_deploy/nats/*.conf`` are :func:`hub_conf` and :func:`leaf_conf` rendered
with :data:`HUB` and :data:`REGIONS`; the local launcher and the tests render the
same text with other ports. :func:`parse_conf` reads back what a test checks.
``python -m replicator.topology`` rewrites ``edge_deploy/nats/*.conf``
(``tests/replicator/test_topology.py`` checks that they are what it writes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HUB_DOMAIN = "hub"
CONF_DIR = Path(__file__).resolve().parent.parent / "edge_deploy" / "nats"


@dataclass(frozen=True)
class ServerPorts:
    name: str  # the JetStream domain, and the region for a leaf
    client: int
    monitor: int


HUB = ServerPorts(HUB_DOMAIN, 4222, 8222)
HUB_LEAF_PORT = 7422
# Each server's JetStream file store limit. The hub holds every published version the retention keeps
# (replicator/retention.py), and each leaf's mirror holds the same (replicator/mirrors.py): at least a
# region's champion, its 5 previous versions, a challenger, a shadow and the version being published, so
# 9 bundles; 16 GB holds 9 of up to 1.7 GB (the 1M-item synthetic bundle is 1.3 GB).
MAX_FILE_STORE = "16G"
REGIONS = (ServerPorts("eu-west", 4223, 8223), ServerPorts("us-east", 4224, 8224))


def hub_conf(ports: ServerPorts, leaf_port: int, store_dir: str, max_file_store: str = MAX_FILE_STORE) -> str:
    return f"""# The hub: where the trainer publishes bundles and operators write promotions.
# JetStream domain "{ports.name}"; regions connect to it as leaf nodes on port {leaf_port}.
# Ports must agree with edge_deploy/local/up.py (tests/replicator/test_topology.py checks).
server_name: hub
listen: 127.0.0.1:{ports.client}
http: 127.0.0.1:{ports.monitor}

jetstream {{
  domain: {ports.name}
  store_dir: "{store_dir}"
  max_file_store: {max_file_store}
}}

leafnodes {{
  listen: 127.0.0.1:{leaf_port}
}}
"""


def leaf_conf(ports: ServerPorts, hub_leaf_port: int, store_dir: str, max_file_store: str = MAX_FILE_STORE) -> str:
    r = ports.name
    return f"""# Region {r}: a leaf node of the hub with its own JetStream domain "{r}".
# The replicator creates mirrors of the hub's promotion and bundle buckets here
# (replicator/mirrors.py), so the region keeps serving and can roll back when
# cut off from the hub. Ports must agree with edge_deploy/local/up.py.
server_name: leaf-{r}
listen: 127.0.0.1:{ports.client}
http: 127.0.0.1:{ports.monitor}

jetstream {{
  domain: {r}
  store_dir: "{store_dir}"
  max_file_store: {max_file_store}
}}

leafnodes {{
  remotes: [
    {{ url: "nats-leaf://127.0.0.1:{hub_leaf_port}" }}
  ]
}}
"""


@dataclass(frozen=True)
class ParsedConf:
    server_name: str
    client_port: int
    monitor_port: int
    domain: str
    leaf_listen_port: int | None
    remote_ports: tuple[int, ...]


def parse_conf(text: str) -> ParsedConf:
    """The fields of a config written in the shape above (not a general NATS config parser)."""

    def one(pattern: str) -> str:
        m = re.search(pattern, text, re.MULTILINE)
        if m is None:
            raise ValueError(f"config has no match for {pattern!r}")
        return m.group(1)

    leaf = re.search(r"leafnodes\s*\{\s*listen:\s*[\d.]+:(\d+)", text)
    return ParsedConf(
        server_name=one(r"^server_name:\s*(\S+)"),
        client_port=int(one(r"^listen:\s*[\d.]+:(\d+)")),
        monitor_port=int(one(r"^http:\s*[\d.]+:(\d+)")),
        domain=one(r"^\s*domain:\s*(\S+)"),
        leaf_listen_port=int(leaf.group(1)) if leaf else None,
        remote_ports=tuple(int(p) for p in re.findall(r"nats-leaf://[\d.]+:(\d+)", text)),
    )


def write_confs(conf_dir: Path = CONF_DIR) -> list[Path]:
    """Render ``edge_deploy/nats``: the hub's config and one per region."""
    out = {conf_dir / "hub.conf": hub_conf(HUB, HUB_LEAF_PORT, f"jetstream/{HUB.name}")}
    for r in REGIONS:
        out[conf_dir / f"leaf-{r.name}.conf"] = leaf_conf(r, HUB_LEAF_PORT, f"jetstream/{r.name}")
    for path, text in out.items():
        path.write_text(text)
    return list(out)


if __name__ == "__main__":
    for written in write_confs():
        print(written)
