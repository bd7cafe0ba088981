"""The node's lifecycle: gRPC server, health, reflection, bundle loading, graceful stop.

The server is ``grpc.aio``'s, on an event loop in a thread of its own: a ``Rank`` runs on the loop, with
no hand-off to a worker thread (the sync server woke a pool thread per call: about a third of the
node's CPU per request went to thread switches and the pool's queues). Work that may block on I/O runs
in a pool of ``Settings.workers`` threads instead, so that it never holds the loop: every ``Events.Log``
that streams (it waits for JetStream's ack), and ``Rank`` when the node reads an online feature store
(Redis) or logs exposures. The rest of the node (the CLI, the supervisor, the replicator, the tests)
drives it through the same blocking methods as before.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
from collections.abc import Callable, Coroutine
from concurrent import futures
from pathlib import Path
from types import FrameType
from typing import Any, Self, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from node import metrics, prefault
from node.bundle import LoadedBundle
from node.bundle_holder import BundleHolder, Routing
from node.feature_store import EmbeddedFeatureStore, FeatureStoreFactory
from node.feedback import Feedback
from node.gen.edgerank.v1 import (
    events_pb2,
    events_pb2_grpc,
    ranker_pb2,
    ranker_pb2_grpc,
)
from node.gil import short_gil_slices
from node.interceptor import ErrorInterceptor
from node.online_store import redis_store_factory
from node.pipeline import RankingPipeline
from node.servicer import EventsServicer, RankerServicer
from node.settings import Settings
from node.shadow import ShadowScorer
from trainer.bundle import BundleError

log = logging.getLogger(__name__)
T = TypeVar("T")

RANKER_SERVICE = ranker_pb2.DESCRIPTOR.services_by_name["Ranker"].full_name
EVENTS_SERVICE = events_pb2.DESCRIPTOR.services_by_name["Events"].full_name
# Health follows readiness for these names ("" is the whole server).
HEALTH_NAMES = ("", RANKER_SERVICE, EVENTS_SERVICE)


class Node:
    """One serving node. ``start()`` binds and serves; readiness follows the bundle."""

    def __init__(
        self,
        settings: Settings,
        feature_store_factory: FeatureStoreFactory = EmbeddedFeatureStore,
        holder: BundleHolder | None = None,
    ):
        self.settings = settings
        self.holder = holder or BundleHolder()
        self._close_redis: Callable[[], None] | None = None
        if settings.redis_url and feature_store_factory is EmbeddedFeatureStore:
            feature_store_factory, self._close_redis = redis_store_factory(settings)
        # Only the embedded store never blocks: any other (Redis, a test's) may wait on I/O.
        self._online_store = feature_store_factory is not EmbeddedFeatureStore
        self.feedback: Feedback | None = None
        self.pipeline = RankingPipeline(settings, self.holder, feature_store_factory)
        self.shadow = ShadowScorer(self.pipeline, self.holder)
        self.pipeline.on_fallback = lambda reason: metrics.FALLBACKS.labels(reason).inc()
        self.health = health.aio.HealthServicer()
        self._server: grpc.aio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._blocking: futures.ThreadPoolExecutor | None = None
        self._port: int | None = None
        self._load_lock = threading.Lock()
        self._stopped = threading.Event()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("node not started")
        return self._port

    @property
    def target(self) -> str:
        return f"{self.settings.host}:{self.port}"

    def start(self, load: bool = True) -> Node:
        """Bind and start serving (NOT_SERVING), then load the bundle if ``load``."""
        s = self.settings
        self.feedback = Feedback.from_settings(s)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="grpc-aio", daemon=True)
        thread.start()
        self._loop, self._loop_thread = loop, thread
        try:
            port = self._on_loop(self._start_server())
        except BaseException:
            self._stop_loop()
            raise
        self._port = port
        if s.metrics_port:
            metrics.serve(s.metrics_port, s.host)
            log.info("metrics on http://%s:%d/metrics", s.host, s.metrics_port)
        log.info("listening on %s:%d (not serving until a bundle is warm)", s.host, port)
        if load:
            self.load_bundle()
        return self

    async def _start_server(self) -> int:
        s = self.settings
        server = grpc.aio.server(
            interceptors=[ErrorInterceptor()],
            # Several processes may share the port (``processes`` > 1); one alone keeps it to itself.
            options=[("grpc.so_reuseport", 1 if s.processes > 1 else 0)],
        )
        exposures = self.feedback.exposures if self.feedback else None
        events = self.feedback.events if self.feedback else None
        if self._online_store or exposures is not None or events is not None:
            self._blocking = futures.ThreadPoolExecutor(max_workers=s.workers, thread_name_prefix="rank")
        rank_offload = self._blocking if self._online_store or exposures is not None else None
        ranker = RankerServicer(s, self.holder, self.pipeline, self.shadow, exposures, offload=rank_offload)
        ranker_pb2_grpc.add_RankerServicer_to_server(ranker, server)
        events_pb2_grpc.add_EventsServicer_to_server(EventsServicer(s, events, offload=self._blocking), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        await self._set_health_on_loop(False)
        reflection.enable_server_reflection(
            (
                RANKER_SERVICE,
                EVENTS_SERVICE,
                health.SERVICE_NAME,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        port = server.add_insecure_port(f"{s.host}:{s.port}")
        if port == 0:
            raise OSError(f"cannot bind {s.host}:{s.port}")
        await server.start()
        self._server = server
        return port

    def _on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's loop and wait for its result (from any other thread)."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("node not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._loop_thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        self._loop = self._loop_thread = None

    def load_bundle(self, path: Path | None = None) -> LoadedBundle:
        """Load, verify and warm a bundle beside the current one, then swap it in.

        On any failure raises BundleError and keeps serving what it served.
        """
        with self._load_lock:
            bundle = self.prepare_bundle(path or self.settings.bundle_dir)
            old = self.holder.swap(bundle)
            metrics.set_bundle(self.settings.region, bundle.version, bundle.model_version)
            self._set_health(True)
            log.info(
                "serving bundle %s (was %s)",
                bundle.version,
                old.version if old else None,
            )
            return bundle

    def prepare_bundle(self, path: Path) -> LoadedBundle:
        """Load, verify and warm a bundle without serving it (raises BundleError on any failure)."""
        with short_gil_slices():  # the serving thread waits at most 0.5 ms for the GIL at a time meanwhile
            bundle = LoadedBundle.load(path, nprobe=self.settings.ivf_nprobe, lock=self.settings.lock_bundle)
            try:
                bundle.warm_up()
                self.pipeline.warm_up(bundle)
            except BundleError:
                raise
            except Exception as e:
                raise BundleError(f"{bundle.path}: warm-up failed: {type(e).__name__}: {e}") from e
            if self.settings.lock_code:  # after the warm-up: with what the load and the warm-up imported
                prefault.lock_code()
        # Every object alive now (the modules, gRPC's, NumPy's and onnxruntime's, this bundle's) lives as
        # long as the process or the bundle: out of the collector's way. A full collection walks every
        # tracked object with the GIL held, 36-47 ms at about 68,000 of them, on whichever request's thread
        # it falls (BENCHMARKS, latency, session (8)); frozen, they are not walked. freeze() is a list splice,
        # not a collection. Unloaded bundles go by reference counting (tests check that, GC disabled).
        gc.freeze()
        return bundle

    def serve_routing(self, routing: Routing) -> None:
        """Swap in a prepared champion (with canary and shadow) as one reference."""
        old = self.holder.set_routing(routing)
        metrics.set_bundle(self.settings.region, routing.champion.version, routing.champion.model_version)
        self._set_health(True)
        if old is not routing.champion:
            log.info("serving bundle %s (was %s)", routing.champion.version, old.version if old else None)

    def _set_health(self, serving: bool) -> None:
        self._on_loop(self._set_health_on_loop(serving))

    async def _set_health_on_loop(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in HEALTH_NAMES:
            await self.health.set(name, status)

    def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, let in-flight requests finish, stop."""
        if self._server is None or self._stopped.is_set():
            return
        self._set_health(False)
        self._on_loop(self._server.stop(self.settings.grace_s if grace is None else grace))
        self._stop_loop()
        if self._blocking is not None:
            self._blocking.shutdown(wait=True)
        if self.feedback is not None:
            self.feedback.close()
        if self._close_redis is not None:
            self._close_redis()
        self._stopped.set()
        log.info("stopped")

    def serve_until_signalled(self) -> None:
        """Block until SIGTERM or SIGINT, then stop gracefully."""
        stop_requested = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("received %s; stopping", signal.Signals(signum).name)
            stop_requested.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)
        while not stop_requested.wait(0.5):
            pass
        self.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(grace=0)
