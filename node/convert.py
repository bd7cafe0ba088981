"""Conversions between the pipeline's types and the wire messages."""

from __future__ import annotations

from node.gen.edgerank.v1 import ranker_pb2
from node.types import RankResult, ServedBy, Source

# The pipeline's enums mirror the proto enums by name (a test checks numbers too).
_SOURCE = {s: ranker_pb2.Source.Value(f"SOURCE_{s.name}") for s in Source}
_SERVED_BY = {r: ranker_pb2.ServedBy.Value(f"SERVED_BY_{r.name}") for r in ServedBy}


def rank_response(result: RankResult) -> ranker_pb2.RankResponse:
    response = ranker_pb2.RankResponse(
        bundle_version=result.bundle_version,
        model_version=result.model_version,
        served_by=_SERVED_BY[result.served_by],
        experiment_arm=result.experiment_arm,
        request_id=result.request_id,
        total_ms=result.total_ms,
    )
    # ``add`` on the repeated fields: about half the cost of building a list of messages first.
    add_item = response.items.add
    for i in result.items:
        add_item(item_id=i.item_id, score=i.score, rank=i.rank, source=_SOURCE[i.source])
    add_stage = response.stages.add
    for name, ms in result.stages.items():
        add_stage(stage=name, ms=ms)
    return response
