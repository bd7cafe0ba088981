"""The container image and Kubernetes manifests agree with the code.

Checks the Dockerfile and edge_deploy/k8s against pyproject.toml (version,
console script, packages) and node.settings.Settings (every EDGERANK_* key is
a real setting with a valid value, the gRPC port is the default one).
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from node.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "edge_deploy"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
REGIONS = sorted(p for p in (K8S / "regions").iterdir() if p.is_dir())
IMAGE = "edgerank-node"
METRICS_PORT = 9100


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def _final_stage() -> list[tuple[str, str]]:
    instructions = _dockerfile()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"use the exec form (JSON list), got {args!r}"
    return [str(v) for v in value]


def _docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for op, args in _final_stage():
        if op == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def _kustomization(directory: Path) -> dict[str, Any]:
    return dict(_yaml(directory / "kustomization.yaml"))


def _base_resources() -> dict[str, dict[str, Any]]:
    """The base's resources by kind (one of each)."""
    by_kind: dict[str, dict[str, Any]] = {}
    for name in _kustomization(BASE)["resources"]:
        doc = _yaml(BASE / name)
        assert doc["kind"] not in by_kind, f"two {doc['kind']}s in the base"
        by_kind[doc["kind"]] = doc
    return by_kind


def _container() -> dict[str, Any]:
    containers = _base_resources()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _container_port(name: str) -> int:
    ports = {p["name"]: p["containerPort"] for p in _container()["ports"]}
    return int(ports[name])


def _settings_default(name: str) -> Any:
    field = {f.name: f for f in dataclasses.fields(Settings)}[name]
    assert field.default is not dataclasses.MISSING
    return field.default


def _overlay_configmap_data(region_dir: Path) -> dict[str, str]:
    configmap = _base_resources()["ConfigMap"]
    data: dict[str, str] = {}
    for entry in _kustomization(region_dir).get("patches", []):
        patch = yaml.safe_load(entry["patch"])
        if patch["kind"] == "ConfigMap":
            assert entry["target"]["name"] == configmap["metadata"]["name"]
            assert patch["metadata"]["name"] == configmap["metadata"]["name"]
            data.update(patch["data"])
    return data


def _env_keys_are_settings(keys: list[str], where: str) -> None:
    known = {ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings)}
    unknown = sorted(k for k in keys if k.startswith(ENV_PREFIX) and k not in known)
    assert not unknown, f"{where}: not fields of node.settings.Settings: {unknown}"


def test_there_are_regions() -> None:
    assert [p.name for p in REGIONS] == ["eu-west", "us-east"]


def test_image_name_and_tag_agree() -> None:
    version = _pyproject()["project"]["version"]
    images = _kustomization(BASE)["images"]
    assert images == [{"name": IMAGE, "newTag": version}]
    assert _container()["image"] == IMAGE
    labels = " ".join(args for op, args in _final_stage() if op == "LABEL")
    assert f'org.opencontainers.image.title="{IMAGE}"' in labels
    build = f"-t {IMAGE}:{version} ."
    assert build in (DEPLOY / "Dockerfile").read_text()
    assert build in (DEPLOY / "README.md").read_text()


def test_grpc_port_is_the_settings_default_everywhere() -> None:
    port = _settings_default("port")
    assert _container_port("grpc") == port
    exposed = {int(p) for op, args in _final_stage() if op == "EXPOSE" for p in args.split()}
    assert exposed == {port, METRICS_PORT}
    assert _container_port("metrics") == METRICS_PORT
    assert _docker_env()[ENV_PREFIX + "PORT"] == str(port)
    assert _base_resources()["ConfigMap"]["data"][ENV_PREFIX + "PORT"] == str(port)
    service = {p["name"]: p for p in _base_resources()["Service"]["spec"]["ports"]}
    assert service["grpc"]["port"] == port and service["grpc"]["targetPort"] == "grpc"
    assert service["metrics"]["port"] == METRICS_PORT


@pytest.mark.parametrize("probe", ["startupProbe", "readinessProbe", "livenessProbe"])
def test_probes_use_grpc_health_on_the_grpc_port(probe: str) -> None:
    spec = _container()[probe]
    assert not {"httpGet", "tcpSocket", "exec"} & set(spec), f"{probe} must be a grpc probe"
    assert spec["grpc"]["port"] == _settings_default("port")


def test_the_node_serves_metrics_on_the_metrics_port() -> None:
    # The scrape annotations and the Service point at the "metrics" port: the node must serve there.
    data = _base_resources()["ConfigMap"]["data"]
    assert int(data[ENV_PREFIX + "METRICS_PORT"]) == _container_port("metrics")
    annotations = _base_resources()["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == _container_port("metrics")


def test_the_processes_metrics_directory_is_writable() -> None:
    # With several processes the supervisor keeps their metrics in a temporary directory (node.supervisor);
    # the root filesystem is read-only, so /tmp must be a volume.
    container = _container()
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}


def test_one_server_process_per_requested_core() -> None:
    data = _base_resources()["ConfigMap"]["data"]
    cpu = _container()["resources"]["requests"]["cpu"]
    assert int(data[ENV_PREFIX + "PROCESSES"]) == int(cpu), f"{cpu} CPUs requested"


def test_container_listens_on_all_interfaces() -> None:
    assert _docker_env()[ENV_PREFIX + "HOST"] == "0.0.0.0"
    assert _base_resources()["ConfigMap"]["data"][ENV_PREFIX + "HOST"] == "0.0.0.0"


def test_env_keys_are_settings_fields() -> None:
    _env_keys_are_settings(list(_docker_env()), "Dockerfile ENV")
    _env_keys_are_settings(list(_base_resources()["ConfigMap"]["data"]), "base ConfigMap")
    for region in REGIONS:
        _env_keys_are_settings(list(_overlay_configmap_data(region)), f"{region.name} overlay")


@pytest.mark.parametrize("region", REGIONS, ids=lambda p: p.name)
def test_region_settings_load(region: Path) -> None:
    env = {**_docker_env(), **_base_resources()["ConfigMap"]["data"]}
    env.update(_overlay_configmap_data(region))
    settings = Settings.load(env=env)
    assert settings.region == region.name
    assert settings.host == "0.0.0.0"


def test_regions_are_distinct_and_scale_the_deployment() -> None:
    deployment = _base_resources()["Deployment"]["metadata"]["name"]
    regions = []
    for region in REGIONS:
        kustomization = _kustomization(region)
        assert kustomization["resources"] == ["../../base"]
        assert [r["name"] for r in kustomization["replicas"]] == [deployment]
        assert kustomization["replicas"][0]["count"] >= 2
        regions.append(_overlay_configmap_data(region)[ENV_PREFIX + "REGION"])
    assert len(set(regions)) == len(regions), regions


def test_entrypoint_is_the_console_script() -> None:
    scripts = _pyproject()["project"]["scripts"]
    entrypoint = [_exec_form(args) for op, args in _final_stage() if op == "ENTRYPOINT"]
    cmd = [_exec_form(args) for op, args in _final_stage() if op == "CMD"]
    assert entrypoint == [["edgerank"]] and "edgerank" in scripts
    assert cmd == [["serve"]]
    assert _container().get("command") is None
    assert _container()["args"] == cmd[0]


def test_runs_as_the_dockerfile_user() -> None:
    users = [args for op, args in _final_stage() if op == "USER"]
    assert users and users[-1] != "0" and users[-1].isdigit()
    pod = _base_resources()["Deployment"]["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert str(pod["runAsUser"]) == users[-1]


def test_the_node_may_lock_its_bundle_when_the_settings_ask_it_to() -> None:
    # A non-root container has no CAP_IPC_LOCK unless added; without it the lock falls back with a warning.
    assert _settings_default("lock_bundle") is True
    caps = _container()["securityContext"]["capabilities"]
    assert caps["drop"] == ["ALL"] and caps["add"] == ["IPC_LOCK"]


def test_image_copies_every_python_package() -> None:
    maturin = _pyproject()["tool"]["maturin"]
    wanted = {*maturin["python-packages"], maturin["module-name"].split(".")[0]}
    copied = {
        Path(shlex.split(args)[0]).name for op, args in _dockerfile() if op == "COPY" and not args.startswith("--from")
    }
    assert wanted <= copied, f"not copied into the builder: {sorted(wanted - copied)}"


def test_kustomize_resources_exist() -> None:
    for directory in (BASE, *REGIONS):
        for resource in _kustomization(directory)["resources"]:
            assert (directory / resource).exists(), f"{directory}: missing {resource}"
