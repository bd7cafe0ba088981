"""gRPC servicers: proto in, validation, the pipeline, proto out. Errors go to the interceptor."""

from __future__ import annotations

import dataclasses

import grpc

from node import convert, metrics, validation
from node.bundle_holder import BundleHolder
from node.deadline import request_budget
from node.gen.edgerank.v1 import (
    events_pb2,
    events_pb2_grpc,
    ranker_pb2,
    ranker_pb2_grpc,
)
from node.pipeline import RankingPipeline
from node.settings import Settings


class RankerServicer(ranker_pb2_grpc.RankerServicer):
    def __init__(self, settings: Settings, holder: BundleHolder, pipeline: RankingPipeline):
        self.settings, self.holder, self.pipeline = settings, holder, pipeline

    def Rank(self, request: ranker_pb2.RankRequest, context: grpc.ServicerContext) -> ranker_pb2.RankResponse:
        bundle = self.holder.snapshot()
        query = validation.rank_query(request, self.settings, bundle.surfaces)
        budget = request_budget(context.time_remaining(), self.settings.budget_ms)
        result = self.pipeline.rank(dataclasses.replace(query, budget_s=budget), bundle)
        metrics.observe_rank(result)
        return convert.rank_response(result)


class EventsServicer(events_pb2_grpc.EventsServicer):
    def __init__(self, settings: Settings):
        self.settings = settings

    def Log(self, request: events_pb2.LogRequest, context: grpc.ServicerContext) -> events_pb2.LogResponse:
        return events_pb2.LogResponse(accepted=validation.log_request(request, self.settings))
