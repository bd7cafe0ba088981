"""Health follows readiness; reflection lists the services; UNAVAILABLE before a bundle."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc
from node.server import Node
from tests.node.conftest import node_settings

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def status(channel: grpc.Channel, service: str) -> int:
    response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(response.status)


def test_not_serving_until_loaded_then_serving_until_stopped(bundle_root: Path) -> None:
    node = Node(node_settings(bundle_root)).start(load=False)
    try:
        with grpc.insecure_channel(node.target) as channel:
            assert status(channel, "") == NOT_SERVING
            assert status(channel, "edgerank.v1.Ranker") == NOT_SERVING
            with pytest.raises(grpc.RpcError) as e:
                ranker_pb2_grpc.RankerStub(channel).Rank(
                    ranker_pb2.RankRequest(user_id="u001", num_results=1), timeout=5
                )
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
            node.load_bundle()
            assert status(channel, "") == SERVING
            assert status(channel, "edgerank.v1.Ranker") == SERVING
            assert status(channel, "edgerank.v1.Events") == SERVING
            node._set_health(False)  # what stop() does first
            assert status(channel, "") == NOT_SERVING
    finally:
        node.stop(grace=0)


def test_reflection_lists_services(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (response,) = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in response.list_services_response.service}
    assert {
        "edgerank.v1.Ranker",
        "edgerank.v1.Events",
        "grpc.health.v1.Health",
    } <= names
