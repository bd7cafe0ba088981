"""gRPC servicers: proto in, validation, the pipeline, proto out. Errors go to the interceptor."""

from __future__ import annotations

import dataclasses

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
    ):
        self.settings, self.holder, self.pipeline, self.shadow = settings, holder, pipeline, shadow
        self.exposures = exposures

    def Rank(self, request: ranker_pb2.RankRequest, context: grpc.ServicerContext) -> ranker_pb2.RankResponse:
        bundle, arm = self.holder.route(request.user_id)
        query = validation.rank_query(request, self.settings, bundle.surfaces)
        if self.exposures is not None:
            query = self.exposures.identify(query)
        budget = request_budget(context.time_remaining(), self.settings.budget_ms)
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
    def __init__(self, settings: Settings, events: EventSink | None = None):
        self.settings, self.events = settings, events

    def Log(self, request: events_pb2.LogRequest, context: grpc.ServicerContext) -> events_pb2.LogResponse:
        accepted = validation.log_request(request, self.settings)
        if self.events is not None:
            self.events.log(request.events)  # returns once acked by JetStream or spooled on disk
        return events_pb2.LogResponse(accepted=accepted)
