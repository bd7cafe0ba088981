"""gRPC servicers: proto in, validation, the pipeline, proto out. Errors go to the interceptor.

The handlers are coroutines of the server's event loop. A call runs on the loop itself unless it may
block on I/O; then it runs in the ``offload`` pool the server gives (see :mod:`node.server`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from concurrent.futures import Executor

import grpc

from node import convert, metrics, validation
from node.bundle_holder import BundleHolder
from node.deadline import request_budget
from node.events import EventSink
from node.exposures import ExposureLog
from node.gen.edgerank.v1 import (
    events_pb2,
    events_pb2_grpc,
    ranker_pb2,
    ranker_pb2_grpc,
)
from node.pipeline import RankingPipeline
from node.settings import Settings
from node.shadow import ShadowScorer


class RankerServicer(ranker_pb2_grpc.RankerServicer):
    def __init__(
        self,
        settings: Settings,
        holder: BundleHolder,
        pipeline: RankingPipeline,
        shadow: ShadowScorer | None = None,
        exposures: ExposureLog | None = None,
        offload: Executor | None = None,
    ):
        self.settings, self.holder, self.pipeline, self.shadow = settings, holder, pipeline, shadow
        self.exposures, self.offload = exposures, offload

    async def Rank(self, request: ranker_pb2.RankRequest, context: grpc.aio.ServicerContext) -> ranker_pb2.RankResponse:
        remaining = context.time_remaining()
        if self.offload is None:
            return self.rank(request, remaining)
        # The request's own deadline as a time, so that waiting for a thread counts against it.
        deadline_at = None if remaining is None else time.perf_counter() + remaining
        return await asyncio.get_running_loop().run_in_executor(self.offload, self._rank_by, request, deadline_at)

    def _rank_by(self, request: ranker_pb2.RankRequest, deadline_at: float | None) -> ranker_pb2.RankResponse:
        return self.rank(request, None if deadline_at is None else deadline_at - time.perf_counter())

    def rank(self, request: ranker_pb2.RankRequest, time_remaining: float | None) -> ranker_pb2.RankResponse:
        """One Rank call, given the seconds left of the caller's deadline (None: no deadline)."""
        bundle, arm = self.holder.route(request.user_id)
        query = validation.rank_query(request, self.settings, bundle.surfaces)
        if self.exposures is not None:
            query = self.exposures.identify(query)
        budget = request_budget(time_remaining, self.settings.budget_ms)
        result = self.pipeline.rank(dataclasses.replace(query, budget_s=budget), bundle)
        if result.experiment_arm != arm:
            result = dataclasses.replace(result, experiment_arm=arm)
        metrics.observe_rank(result)
        if self.shadow is not None:
            self.shadow.offer(query, result)
        if self.exposures is not None:
            self.exposures.log(query, result, bundle)
        return convert.rank_response(result)


class EventsServicer(events_pb2_grpc.EventsServicer):
    def __init__(self, settings: Settings, events: EventSink | None = None, offload: Executor | None = None):
        self.settings, self.events, self.offload = settings, events, offload

    async def Log(self, request: events_pb2.LogRequest, context: grpc.aio.ServicerContext) -> events_pb2.LogResponse:
        accepted = validation.log_request(request, self.settings)
        if self.events is not None:
            # Returns once acked by JetStream or spooled on disk: off the loop.
            await asyncio.get_running_loop().run_in_executor(self.offload, self.events.log, request.events)
        return events_pb2.LogResponse(accepted=accepted)
