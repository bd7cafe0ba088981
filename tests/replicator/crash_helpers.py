"""Helpers for tests that run ``edgerank`` subprocesses: what version a node answers from."""

from __future__ import annotations

import grpc

from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc
from replicator.assignment import Assignment
from replicator.region_dir import RegionDir


def rank_version(target: str) -> str | None:
    with grpc.insecure_channel(target) as channel:
        try:
            r = ranker_pb2_grpc.RankerStub(channel).Rank(
                ranker_pb2.RankRequest(user_id="u003", num_results=5), timeout=5
            )
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNAVAILABLE:
                return None
            raise
    return str(r.bundle_version)


def assigned(region: RegionDir) -> Assignment:
    """The region's assignment, which the test has already seen written."""
    a = region.read_assignment()
    assert a is not None, f"{region.root} has no assignment"
    return a


def champion(region: RegionDir) -> str | None:
    """The region's champion, or None while nothing is assigned."""
    a = region.read_assignment()
    return a.champion if a is not None else None
