"""The transport-free ranking pipeline and its degradation ladder.

Stages (each timed): features -> retrieve -> blend -> assemble -> score ->
rerank. Arrays flow between stages; Python builds per-item objects only for
the final top n. When a stage fails the request moves down the ladder:

* feature store raises  -> the bundle's batch features (STALE_FEATURES)
* user unknown          -> the surface's popularity list (POPULARITY)
* retrieval raises      -> the surface's popularity list (POPULARITY)
* assembly/score raises -> candidates in blend order (RETRIEVAL_ORDER)

A stage whose running cost estimate does not fit the request's deadline is
skipped for the rung below it, and measured again later (``Probes`` in
:mod:`node.deadline`). Failures that repeat on every request (an index that
is down) log one line per interval with a count, not one per request.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from node.bundle import WARM_UP_PAUSE_S, LoadedBundle, rank_scores
from node.bundle_holder import BundleHolder
from node.deadline import POPULARITY_RESERVE_S, SAFETY, WATCHDOG_SLACK_S, Deadline, Probes, StageCosts, Watchdog
from node.errors import DeadlineExceeded
from node.feature_store import EmbeddedFeatureStore, FeatureStore, FeatureStoreFactory, StaleFeatures
from node.log_limit import LogLimiter
from node.recent import REPLAY_IDLE, RecentQueries
from node.settings import Settings
from node.types import (
    FeatureSnapshot,
    RankedItem,
    RankQuery,
    RankResult,
    ServedBy,
    Source,
    UserState,
)
from trainer import features as feature_defs
from trainer.candidates import SOURCE_NAMES, Quotas, Sources

log = logging.getLogger(__name__)


EXPERIMENT_ARM = "champion"
# The generator's sources (trainer.candidates.SOURCE_NAMES) as wire codes.
SOURCES = tuple(Source[name.upper()] for name in SOURCE_NAMES)
_SOURCE_CODES = np.array([int(s) for s in SOURCES], dtype=np.uint8)
_SOURCE_BY_CODE = {int(s): s for s in Source}
_EMPTY_U32 = np.empty(0, np.uint32)
_EMPTY_F32 = np.empty(0, np.float32)
_STORES_KEPT = 4
# Repeated warnings (a stage failing on every request): one line per this many seconds.
WARNING_INTERVAL_S = 10.0


def _drill_delay(seconds: float, run_options: Any) -> None:
    """A slow ranker for drills: waits, but gives up when the watchdog cancels the run."""
    end = time.perf_counter() + seconds
    while (left := end - time.perf_counter()) > 0:
        if run_options.terminate:
            raise TimeoutError("drill: ranker delay cancelled by the watchdog")
        time.sleep(min(left, 0.0005))


class _Span:
    """Times one stage into a StageTimer, and into a cost estimate when the stage ends normally."""

    __slots__ = ("costs", "stage", "t0", "timer")

    def __init__(self, timer: StageTimer, stage: str, costs: StageCosts | None):
        self.timer, self.stage, self.costs, self.t0 = timer, stage, costs, 0.0

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        seconds = time.perf_counter() - self.t0
        stages = self.timer.stages
        stages[self.stage] = stages.get(self.stage, 0.0) + seconds * 1e3
        if self.costs is not None and kind is None:
            self.costs.observe(self.stage, seconds)


class StageTimer:
    """Wall time per stage, in ms, in the order the stages ran."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.stages: dict[str, float] = {}

    def __call__(self, stage: str, costs: StageCosts | None = None) -> _Span:
        """A context manager timing ``stage`` (and feeding ``costs`` its time when it does not raise)."""
        return _Span(self, stage, costs)

    def total_ms(self) -> float:
        return (time.perf_counter() - self.start) * 1e3


@dataclass(frozen=True)
class _Candidates:
    items: np.ndarray  # u32 item indices, blend order
    sources: np.ndarray  # u8 Source codes
    scores: np.ndarray  # f32 retrieval scores


def request_seed(key: str, now_ts: float) -> int:
    """A stable exploration seed for (request or user, time)."""
    digest = hashlib.blake2b(f"{key}|{now_ts:.3f}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class RankingPipeline:
    def __init__(
        self,
        settings: Settings,
        holder: BundleHolder,
        feature_store_factory: FeatureStoreFactory = EmbeddedFeatureStore,
    ):
        self.settings = settings
        self.quotas = Quotas(
            ann=settings.quota_ann,
            session=settings.quota_session,
            trending=settings.quota_trending,
            fresh=settings.quota_fresh,
            session_neighbours=settings.session_k,
        )
        self.holder = holder
        self.costs = StageCosts()
        self.probes = Probes(self.costs)
        self.watchdog = Watchdog()
        self.warnings = LogLimiter(log, WARNING_INTERVAL_S)
        self.on_fallback: Callable[[str], None] | None = None
        self._factory = feature_store_factory
        self._stores: dict[int, tuple[LoadedBundle, FeatureStore, FeatureStore]] = {}
        self._stores_lock = threading.Lock()
        self.recent = RecentQueries(settings.warm_up_queries)

    # -- feature stores, one pair (online, batch) per bundle ----------------------
    def prepare(self, bundle: LoadedBundle) -> None:
        """Create the bundle's feature stores (before it is swapped in)."""
        self._stores_for(bundle)

    def _stores_for(self, bundle: LoadedBundle) -> tuple[FeatureStore, FeatureStore]:
        entry = self._stores.get(id(bundle))
        if entry is None or entry[0] is not bundle:
            with self._stores_lock:
                entry = self._stores.get(id(bundle))
                if entry is None or entry[0] is not bundle:
                    entry = (
                        bundle,
                        self._factory(bundle),
                        EmbeddedFeatureStore(bundle),
                    )
                    # The stores hold their bundle: keep only those of bundles the holder still serves or
                    # keeps for a rollback, so that an unloaded version (its mapped and locked files) goes.
                    live = {id(b) for b in self.holder.loaded()}
                    for key in [k for k in self._stores if k not in live]:
                        del self._stores[key]
                    self._stores[id(bundle)] = entry
                    while len(self._stores) > _STORES_KEPT:
                        del self._stores[next(iter(self._stores))]
        return entry[1], entry[2]

    # -- the request path --------------------------------------------------------
    def rank(self, query: RankQuery, bundle: LoadedBundle | None = None) -> RankResult:
        """Rank for ``query`` from one bundle (the holder's current one by default); the query is kept
        among the recent ones a new bundle's warm-up replays."""
        self.recent.note(query)
        return self._rank(query, bundle)

    def _rank(self, query: RankQuery, bundle: LoadedBundle | None = None) -> RankResult:
        bundle = bundle if bundle is not None else self.holder.snapshot()
        timer = StageTimer()
        budget = query.budget_s if query.budget_s is not None else self.settings.budget_ms / 1000.0
        deadline = Deadline(budget, start=timer.start)
        if deadline.remaining() < POPULARITY_RESERVE_S:
            raise DeadlineExceeded(
                f"deadline of {budget * 1e3:.2f} ms is too short to answer (needs {POPULARITY_RESERVE_S * 1e3} ms)"
            )
        now = query.now_ts if query.now_ts is not None else time.time()
        exclude = self._exclude_indices(bundle, query.exclude_item_ids)

        served_by = ServedBy.FULL
        with timer("features"):
            online, batch = self._stores_for(bundle)
            try:
                user = online.get(query.user_id, query.session_id, now)
            except StaleFeatures as stale:
                # The online store is slow or down and said so fast: its cache, else the batch features.
                self._fallback("feature_store")
                served_by = ServedBy.STALE_FEATURES
                user = stale.state if stale.state is not None else batch.get(query.user_id)
            except Exception as error:
                self.warnings.warning("feature_store", "feature store failed; using batch features", error)
                self._fallback("feature_store")
                served_by = ServedBy.STALE_FEATURES
                user = batch.get(query.user_id)
        if user is None:
            return self._popularity(bundle, query, exclude, timer, None)

        gen, pool_size = bundle.candidates, query.pool_size
        excluded = np.concatenate([user.seen.astype(np.uint32, copy=False), exclude]) if len(exclude) else user.seen
        if not deadline.fits(self.costs.estimate("retrieve") + self.costs.estimate("blend")):
            # Retrieval cannot be cancelled: measure it again off this request's path, once per interval.
            if self.probes.due("retrieve"):
                self.probes.measure("retrieve", lambda: self._retrieve(bundle, user, pool_size, len(excluded)))
            self._fallback("budget_retrieval")
            return self._popularity(bundle, query, exclude, timer, user)
        try:
            with self._stage(timer, "retrieve"):
                if self.settings.drill_index_down:
                    raise RuntimeError("drill: the index is down (drill_index_down)")
                sources = self._retrieve(bundle, user, pool_size, len(excluded))
        except Exception as error:
            self.warnings.warning("retrieval", "retrieval failed; serving popularity", error)
            self._fallback("retrieval")
            return self._popularity(bundle, query, exclude, timer, user)

        with self._stage(timer, "blend"):
            pool = gen.blend(sources, excluded, pool_size)
        cand = _Candidates(pool.items, _SOURCE_CODES[pool.source], pool.score)
        if len(cand.items) == 0:
            return self._popularity(bundle, query, exclude, timer, user)

        scored, matrix = self._score(bundle, user, cand, now, deadline, timer)
        if scored is None:
            served_by = ServedBy.RETRIEVAL_ORDER
            # Blend order, expressed as descending scores for the re-ranker.
            scores = rank_scores(len(cand.items))
        else:
            scores = scored

        with self._stage(timer, "rerank"):
            epsilon = self.settings.epsilon if served_by != ServedBy.RETRIEVAL_ORDER else 0.0
            positions, explored = self._rerank(bundle, cand.items, scores, query, now, epsilon)
        shown = scores if served_by != ServedBy.RETRIEVAL_ORDER else cand.scores
        source_codes = cand.sources[positions].copy()
        source_codes[explored] = int(Source.EXPLORE)
        # The shown items' rows only (the exposure log's), not the whole pool's matrix.
        snapshot = None if matrix is None else FeatureSnapshot(user, cand.items[positions], matrix[positions], now)
        return self._result(
            bundle,
            query,
            timer,
            served_by,
            cand.items[positions],
            shown[positions],
            source_codes,
            snapshot,
        )

    def _score(
        self,
        bundle: LoadedBundle,
        user: UserState,
        cand: _Candidates,
        now: float,
        deadline: Deadline,
        timer: StageTimer,
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(scores, feature matrix); scores are None when the ranker does not fit the budget, overruns it, or
        fails, and the matrix is None when it was not assembled.

        A run that fits is cancelled at the deadline minus what the rung below still needs (re-rank and
        result, with the watchdog's slack). A ranker that does not fit is still tried once per probe
        interval, as a probe cancelled at what a run that fits could take, so that probing costs a request
        at most half the budget; a probe that finishes replaces the ranker's estimate.
        """
        estimate = self.costs.estimate("assemble") + self.costs.estimate("score")
        reserve = (
            POPULARITY_RESERVE_S
            + SAFETY * (self.costs.estimate("rerank") + self.costs.estimate("result"))
            + WATCHDOG_SLACK_S
        )
        probe = False
        if deadline.fits(estimate, reserve):
            cutoff = deadline.end - reserve
            self.probes.attempted("score")
        elif self.probes.due("score") and deadline.remaining() > reserve:
            probe = True
            # The longest run that would have fitted: SAFETY * cost + reserve <= remaining.
            cutoff = time.perf_counter() + (deadline.remaining() - reserve) / SAFETY
        else:
            self._fallback("budget_ranker")
            return None, None
        run_options = self.watchdog.guard(cutoff)
        started = assembled = time.perf_counter()
        matrix: np.ndarray | None = None
        try:
            with timer("assemble"):
                context = feature_defs.context_vector(now)
                matrix = bundle.assembler.assemble(
                    user.dense, user.embedding, user.genre, user.last_ts, now, context, cand.items
                )
            assembled = time.perf_counter()
            with timer("score"):
                if self.settings.drill_ranker_delay_ms > 0:
                    _drill_delay(self.settings.drill_ranker_delay_ms / 1000.0, run_options)
                scores = bundle.score(matrix, run_options)
            finished = time.perf_counter()
            if scores.shape != cand.items.shape:
                raise ValueError(f"ranker returned {scores.shape} scores for {cand.items.shape} candidates")
        except Exception as error:
            if run_options.terminate:
                # Cancelled by the watchdog: the ranker costs at least what it ran.
                self.costs.observe("score", max(self.costs.estimate("score"), time.perf_counter() - assembled))
                self.warnings.warning("ranker_timeout", "ranker overran its budget; serving retrieval order")
                self._fallback("ranker_timeout")
            else:
                self.warnings.warning("ranker_error", "scoring failed; serving retrieval order", error)
                self._fallback("ranker_error")
            return None, matrix
        finally:
            self.watchdog.release(run_options)
        record = self.costs.reset if probe else self.costs.observe
        record("assemble", assembled - started)
        record("score", finished - assembled)
        return scores, matrix

    def _stage(self, timer: StageTimer, stage: str) -> _Span:
        """Time a stage for the response and for the stage's cost estimate."""
        return timer(stage, self.costs)

    def _fallback(self, reason: str) -> None:
        if self.on_fallback is not None:
            self.on_fallback(reason)

    # -- stages ------------------------------------------------------------------
    def _exclude_indices(self, bundle: LoadedBundle, ids: tuple[str, ...]) -> np.ndarray:
        """Request excludes as item indices; ids the bundle does not know are ignored."""
        if not ids:
            return _EMPTY_U32
        get = bundle.item_index.get
        found = [i for i in map(get, ids) if i is not None]
        return np.array(found, dtype=np.uint32)

    def _retrieve(self, bundle: LoadedBundle, user: UserState, pool: int, n_exclude: int) -> Sources:
        """Candidate lists (items u32, scores f32, quota) in SOURCES order."""
        recent = int(user.seen[-1]) if len(user.seen) else None
        return bundle.candidates.sources(user.embedding, recent, n_exclude, pool, self.quotas)

    def _rerank(
        self,
        bundle: LoadedBundle,
        items: np.ndarray,
        scores: np.ndarray,
        query: RankQuery,
        now: float,
        epsilon: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        n = min(query.num_results, len(items))
        seed = request_seed(query.request_id or query.user_id, now) if epsilon > 0 else 0
        try:
            positions, explored = bundle.reranker.rerank(
                items,
                np.ascontiguousarray(scores, np.float32),
                n,
                self.settings.max_per_genre,
                epsilon,
                seed,
            )
            return np.asarray(positions, dtype=np.intp), np.asarray(explored, dtype=bool)
        except Exception as error:
            self.warnings.warning("rerank", "re-ranking failed; serving the top n by score", error)
            order = np.argsort(-scores, kind="stable")[:n]
            return order, np.zeros(len(order), dtype=bool)

    def _popularity(
        self,
        bundle: LoadedBundle,
        query: RankQuery,
        exclude: np.ndarray,
        timer: StageTimer,
        user: UserState | None,
    ) -> RankResult:
        with timer("retrieve"):
            ranked = bundle.popularity[bundle.surfaces[query.surface]]
            drop = exclude if user is None else np.concatenate([exclude, user.seen.astype(np.uint32)])
            if len(drop):
                ranked = ranked[: query.num_results + len(drop)]
                ranked = ranked[~np.isin(ranked, drop)]
            items = ranked[: query.num_results]
        sources = np.full(len(items), int(Source.POPULAR), dtype=np.uint8)
        return self._result(
            bundle,
            query,
            timer,
            ServedBy.POPULARITY,
            items,
            rank_scores(len(items)),
            sources,
            None,
        )

    def _result(
        self,
        bundle: LoadedBundle,
        query: RankQuery,
        timer: StageTimer,
        served_by: ServedBy,
        items: np.ndarray,
        scores: np.ndarray,
        sources: np.ndarray,
        snapshot: FeatureSnapshot | None,
    ) -> RankResult:
        t0 = time.perf_counter()
        ids = bundle.item_ids[items].tolist()  # str
        ranked = tuple(
            map(
                RankedItem,
                ids,
                scores.tolist(),
                range(1, len(ids) + 1),
                map(_SOURCE_BY_CODE.__getitem__, sources.tolist()),
            )
        )
        # What the last rung needs after a cancelled ranker: the watchdog cuts the ranker that much earlier.
        self.costs.observe("result", time.perf_counter() - t0)
        return RankResult(
            items=ranked,
            bundle_version=bundle.version,
            model_version=bundle.model_version,
            served_by=served_by,
            experiment_arm=EXPERIMENT_ARM,
            stages=timer.stages,
            total_ms=timer.total_ms(),
            request_id=query.request_id,
            features=snapshot,
        )

    # -- warm-up -----------------------------------------------------------------
    def warm_up(self, bundle: LoadedBundle, rounds: int = 3) -> None:
        """Run the golden users through the whole pipeline on ``bundle`` (not yet served), then the queries
        this node served last (``Settings.warm_up_queries``, :mod:`node.recent`)."""
        self.prepare(bundle)
        surface = "home" if "home" in bundle.surfaces else next(iter(bundle.surfaces))
        users = [str(c["user_id"]) for c in bundle.golden[:8]] or [str(u) for u in bundle.user_ids[:3].tolist()]
        users.append("__warm_up_unknown_user__")
        for _ in range(rounds):
            for user in users:
                self._rank(
                    RankQuery(
                        user,
                        surface,
                        num_results=10,
                        pool_size=self.settings.default_pool_size,
                    ),
                    bundle,
                )
                time.sleep(WARM_UP_PAUSE_S)  # the serving thread's turn: a warm-up is not in a hurry
        started = time.perf_counter()
        # A surface the new bundle does not serve would only be refused.
        replay = [q for q in self.recent.replay() if q.surface in bundle.surfaces]
        for query in replay:
            t = time.perf_counter()
            self._rank(query, bundle)
            time.sleep(max(WARM_UP_PAUSE_S, REPLAY_IDLE * (time.perf_counter() - t)))
        if replay:
            log.info(
                "bundle %s warmed up with %d recently served queries in %.2f s",
                bundle.version,
                len(replay),
                time.perf_counter() - started,
            )
