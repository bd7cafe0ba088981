"""Helpers for tests that run ``edgerank`` subprocesses: what version a node answers from."""

from __future__ import annotations

import grpc

from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc


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
