"""Shadow scoring: a sample of requests is ranked again by the shadow bundle, off the critical path.

The served response is never affected. A single background thread ranks the
sampled query on the shadow bundle and logs how the two lists compare (overlap
of the top n, and the served and shadow versions); when the thread is busy the
sample is dropped rather than queued, so shadow work cannot build up.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from prometheus_client import Counter

from node.bundle_holder import BundleHolder
from node.pipeline import RankingPipeline
from node.types import RankQuery, RankResult

log = logging.getLogger(__name__)

SHADOW_SCORED = Counter("edgerank_shadow_scored", "Requests ranked again by the shadow bundle")
SHADOW_DROPPED = Counter("edgerank_shadow_dropped", "Shadow samples dropped because the shadow thread was busy")


class ShadowScorer:
    def __init__(self, pipeline: RankingPipeline, holder: BundleHolder, sample: float = 0.1):
        self.pipeline, self.holder, self.sample = pipeline, holder, sample
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self._busy = threading.Semaphore(1)
        self._count = 0

    def offer(self, query: RankQuery, served: RankResult) -> None:
        routing = self.holder.routing
        if routing is None or routing.shadow is None or self.sample <= 0.0:
            return
        self._count += 1
        if (self._count * self.sample) % 1.0 >= self.sample:  # every 1/sample-th request
            return
        if not self._busy.acquire(blocking=False):
            SHADOW_DROPPED.inc()
            return
        self._pool.submit(self._score, routing.shadow, query, served)

    def _score(self, shadow: object, query: RankQuery, served: RankResult) -> None:
        try:
            result = self.pipeline.rank(query, shadow)  # type: ignore[arg-type]
            a = {i.item_id for i in served.items}
            b = {i.item_id for i in result.items}
            overlap = len(a & b) / max(1, len(a))
            SHADOW_SCORED.inc()
            log.info(
                "shadow %s vs served %s (%s): user %s, top-%d overlap %.2f, %.2f ms vs %.2f ms",
                result.bundle_version, served.bundle_version, served.experiment_arm, query.user_id,
                len(served.items), overlap, result.total_ms, served.total_ms,
            )  # fmt: skip
        except Exception:
            log.warning("shadow scoring failed for user %s", query.user_id, exc_info=True)
        finally:
            self._busy.release()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
