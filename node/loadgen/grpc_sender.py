"""The gRPC side of the load generator: non-blocking ``Rank`` futures over a few connections."""

from __future__ import annotations

import itertools
from typing import Any

import grpc

from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc
from node.loadgen.driver import OK, Done

_RUNG_NAMES = {v: ranker_pb2.ServedBy.Name(v).removeprefix("SERVED_BY_") for v in ranker_pb2.ServedBy.values()}


class GrpcSender:
    """``Rank`` calls round-robin over ``connections`` channels.

    Each channel gets its own subchannel pool, hence its own TCP connection, so that a node whose
    processes share the port with SO_REUSEPORT sees connections it can spread across them.
    """

    def __init__(self, target: str, connections: int = 4, timeout_s: float = 2.0):
        self.timeout_s = timeout_s
        self.channels = [
            grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1), ("grpc.channel_id", i)])
            for i in range(connections)
        ]
        self.stubs = [ranker_pb2_grpc.RankerStub(ch) for ch in self.channels]
        self._next = itertools.cycle(self.stubs)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        for ch in self.channels:
            grpc.channel_ready_future(ch).result(timeout=timeout_s)

    def send(self, request: ranker_pb2.RankRequest, done: Done) -> None:
        future = next(self._next).Rank.future(request, timeout=self.timeout_s)
        future.add_done_callback(lambda f: done(*_outcome(f)))

    def call(self, request: ranker_pb2.RankRequest) -> tuple[str, str, float | None]:
        try:
            response = next(self._next).Rank(request, timeout=self.timeout_s)
        except grpc.RpcError as e:
            return e.code().name, "", None
        return OK, _RUNG_NAMES.get(response.served_by, str(response.served_by)), response.total_ms

    def close(self) -> None:
        for ch in self.channels:
            ch.close()


def _outcome(future: Any) -> tuple[str, str, float | None]:
    """(code, rung, the node's pipeline ms) of a finished ``Rank`` future; a failed call is its status code."""
    error = future.exception()
    if error is not None:
        code = error.code() if isinstance(error, grpc.Call) else None
        return (code.name if code is not None else type(error).__name__), "", None
    response = future.result()
    return OK, _RUNG_NAMES.get(response.served_by, str(response.served_by)), response.total_ms
