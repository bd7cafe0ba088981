"""Conversions between the pipeline's types and the wire messages."""

from __future__ import annotations

from node.gen.edgerank.v1 import ranker_pb2
from node.types import RankResult, ServedBy, Source

# The pipeline's enums mirror the proto enums by name (a test checks numbers too).
_SOURCE = {s: f"SOURCE_{s.name}" for s in Source}
_SERVED_BY = {r: f"SERVED_BY_{r.name}" for r in ServedBy}


def rank_response(result: RankResult) -> ranker_pb2.RankResponse:
    return ranker_pb2.RankResponse(
        items=[
            ranker_pb2.RankedItem(item_id=i.item_id, score=i.score, rank=i.rank, source=_SOURCE[i.source])
            for i in result.items
        ],
        bundle_version=result.bundle_version,
        model_version=result.model_version,
        served_by=_SERVED_BY[result.served_by],
        experiment_arm=result.experiment_arm,
        stages=[ranker_pb2.StageLatency(stage=name, ms=ms) for name, ms in result.stages.items()],
        request_id=result.request_id,
        total_ms=result.total_ms,
    )
