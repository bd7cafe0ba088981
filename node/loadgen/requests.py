"""The requests a load test sends: warm users from the bundle, and a share of unknown ones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from node.gen.edgerank.v1 import ranker_pb2
from trainer import bundle as bundle_format

UNKNOWN_PREFIX = "loadgen-unknown-"


@dataclass(frozen=True)
class RequestMix:
    candidates: int = 500  # candidate_pool_size
    num_results: int = 20
    unknown_share: float = 0.05
    surface: str = "home"
    distinct: int = 4096  # distinct requests prepared, then cycled


def bundle_user_ids(bundle: Path) -> np.ndarray:
    """The warm users of a bundle (a bundle directory or a root with LATEST), read without loading it."""
    return np.load(bundle_format.resolve(Path(bundle)) / "user_ids.npy", allow_pickle=False, mmap_mode="r")


def prepare_requests(user_ids: np.ndarray, mix: RequestMix, seed: int) -> list[ranker_pb2.RankRequest]:
    """``mix.distinct`` requests: users drawn uniformly from ``user_ids``, ``unknown_share`` of them unknown.

    Building a protobuf per send would cost the load generator CPU it needs for sending; these are
    built once and cycled. ``timestamp_ms`` is left 0: the node uses its own clock.
    """
    if not 0.0 <= mix.unknown_share <= 1.0:
        raise ValueError(f"unknown share must be in [0, 1], got {mix.unknown_share}")
    if len(user_ids) == 0 and mix.unknown_share < 1.0:
        raise ValueError("the bundle has no users; use an unknown share of 1")
    rng = np.random.default_rng(seed)
    unknown = rng.random(mix.distinct) < mix.unknown_share
    rows = rng.integers(0, max(len(user_ids), 1), mix.distinct)
    out = []
    for k in range(mix.distinct):
        user = f"{UNKNOWN_PREFIX}{seed}-{k}" if unknown[k] else str(user_ids[rows[k]])
        out.append(
            ranker_pb2.RankRequest(
                user_id=user,
                surface=mix.surface,
                num_results=mix.num_results,
                candidate_pool_size=mix.candidates,
                request_id=f"lg-{seed}-{k}",
            )
        )
    return out


def expects_full(requests: list[ranker_pb2.RankRequest]) -> list[bool]:
    """Which requests are for warm users (served FULL by a healthy node that is not overloaded)."""
    return [not r.user_id.startswith(UNKNOWN_PREFIX) for r in requests]
