"""edge_deploy/nats configs agree with the topology the launcher and the tests use."""

from __future__ import annotations

from pathlib import Path

from replicator import launcher, topology


def test_configs_are_the_rendered_topology(tmp_path: Path) -> None:
    """Regenerating (``python -m replicator.topology``) changes nothing."""
    written = topology.write_confs(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in topology.CONF_DIR.glob("*.conf"))
    for path in written:
        assert (topology.CONF_DIR / path.name).read_text() == path.read_text(), path.name
    assert f"max_file_store: {topology.MAX_FILE_STORE}" in (topology.CONF_DIR / "hub.conf").read_text()


def test_ports_and_domains_agree() -> None:
    hub = topology.parse_conf((topology.CONF_DIR / "hub.conf").read_text())
    assert (hub.domain, hub.client_port, hub.monitor_port) == ("hub", topology.HUB.client, topology.HUB.monitor)
    assert hub.leaf_listen_port == topology.HUB_LEAF_PORT
    seen = {hub.client_port, hub.monitor_port, topology.HUB_LEAF_PORT}
    for r in topology.REGIONS:
        leaf = topology.parse_conf((topology.CONF_DIR / f"leaf-{r.name}.conf").read_text())
        assert leaf.domain == r.name != topology.HUB_DOMAIN
        assert (leaf.client_port, leaf.monitor_port) == (r.client, r.monitor)
        assert leaf.remote_ports == (topology.HUB_LEAF_PORT,)
        assert leaf.leaf_listen_port is None
        ports = {leaf.client_port, leaf.monitor_port, launcher.NODE_PORTS[r.name]}
        assert not ports & seen, ports & seen
        seen |= ports
    assert set(launcher.NODE_PORTS) == {r.name for r in topology.REGIONS}
