"""The region's replicator: follow the region's promotion key, fetch, verify, publish locally.

The loop reconciles on every wake-up (a watch delivery, a reconnect, or every
``resync_s``): it reads the region's promotion state (from the leaf's mirror
of the hub, or a local override), fetches every referenced version it does
not have, then writes ``assignment.json`` naming only versions that are on
disk and verified. A champion that cannot be fetched or verified is not
assigned; the region keeps its last good champion and says why. Watchers do
not resume across a reconnect, so the reconnect callback re-reads the key and
re-creates them.

With ``prefetch`` (the default), a version is fetched as soon as it is
published (its manifest reaches the region's mirror of the object store), in
the background, before any promotion names it: a promotion then only has to
write ``assignment.json``. A reconcile that wants a version being prefetched
waits for that same download; one that wants only versions on disk (a
rollback) never waits for a prefetch.

On a leaf, the replicator also keeps its mirror of the hub's bundle store as
small as the hub's: when the hub deletes a version (:mod:`replicator.retention`),
it purges that version's chunks from the mirror and drops any partial download
of it (:mod:`replicator.mirrors`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext, api

from replicator import assignment as assign
from replicator import metrics, names, promotions, signing
from replicator.domain_kv import key_value
from replicator.errors import ReplicatorError, TransferError, VerificationError
from replicator.fetch import DiskFull, fetch_version
from replicator.mirrors import ORPHANS_AFTER_S, ensure_mirrors, purge_chunks, sweep
from replicator.nats_io import connect
from replicator.region_dir import RegionDir

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ReplicatorConfig:
    nats_url: str
    region: str
    directory: Path
    trusted_key: Path
    hub_domain: str = "hub"
    keep: int = 3
    resync_s: float = 5.0
    retry_s: float = 1.0
    progress: bool = False
    prefetch: bool = True
    write: Callable[[Any, bytes], None] | None = None  # test hook for disk faults
    sweep_s: float = 600.0  # how often the mirror is swept for chunks no object names (and at start)
    orphans_after_s: float = ORPHANS_AFTER_S  # how old such chunks must be to go (younger: an upload in progress)


class Replicator:
    def __init__(self, config: ReplicatorConfig):
        assign.check_region(config.region)
        self.config = config
        self.region = RegionDir(config.directory)
        self.trusted = signing.load_public(config.trusted_key)
        self.refused: dict[str, str] = {}  # version -> why (not retried)
        self._wake = asyncio.Event()
        self._resubscribe = False
        self._subs: list[Any] = []
        self._reported: dict[str, str] = {}
        self._nc: Client | None = None
        self.mirrored = False
        self.reconciled = asyncio.Event()
        self._fetches: dict[str, asyncio.Future[None]] = {}  # version -> its download in progress
        self._published: list[str] = []  # versions seen published since start, not yet on disk
        self._purged: set[str] = set()  # nuids of deleted objects purged from the mirror
        self._swept_at: float | None = None  # monotonic time of the last sweep of the mirror (None: due, at start)
        self._deleted: list[str] = []  # nuids of objects deleted or replaced since, to purge from the mirror
        self._nuids: dict[str, str] = {}  # object name -> the nuid of its chunks, for the objects seen
        self._gone: set[str] = set()  # versions whose manifest the hub deleted: staging to drop

    async def _on_reconnect(self) -> None:
        self._resubscribe = True
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        c = self.config
        self._nc = await connect(c.nats_url, f"replicator-{c.region}", on_reconnect=self._on_reconnect)
        js = self._nc.jetstream()
        try:
            self.mirrored = bool(c.hub_domain) and await ensure_mirrors(js, c.hub_domain)
            if self.mirrored:
                await promotions.ensure_local_buckets(js)
            # Node reports are best effort: a short timeout, so an absent hub does not slow reconciling.
            hub_js = self._nc.jetstream(domain=c.hub_domain, timeout=1.0) if self.mirrored else js
            await self._subscribe(js)
            log.info("replicating region %s from %s into %s", c.region, c.nats_url, self.region.root)
            self._wake.set()
            while not stop.is_set():
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, timeout=c.resync_s, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                if stop.is_set():
                    break
                self._wake.clear()
                try:
                    if self._resubscribe:
                        self._resubscribe = False
                        await self._subscribe(js)
                    await self.reconcile(js)
                    self.reconciled.set()
                    if self.mirrored:
                        await self._purge_mirror(js)
                    self._drop_gone()
                    await self.report_nodes(hub_js)
                except (TransferError, nats.errors.Error, TimeoutError) as e:
                    metrics.TRANSFER_ERRORS.inc()
                    log.warning("region %s: %s: %s; retrying in %.1f s", c.region, type(e).__name__, e, c.retry_s)
                    asyncio.get_running_loop().call_later(c.retry_s, self._wake.set)
        finally:
            for task in self._fetches.values():
                task.cancel()
            await asyncio.gather(*self._fetches.values(), return_exceptions=True)
            for sub in self._subs:
                await sub.unsubscribe()
            self._subs = []
            await self._nc.close()

    async def _subscribe(self, js: JetStreamContext) -> None:
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except nats.errors.Error as e:
                log.debug("dropping an old watcher: %s", e)
        self._subs = []

        async def on_change(msg: Any) -> None:
            self._wake.set()

        watched = [(names.PROMOTIONS_STREAM, names.PROMOTIONS_BUCKET)]
        if self.mirrored:
            watched.append((names.OVERRIDES_STREAM, names.OVERRIDES_BUCKET))
        for stream, bucket in watched:
            self._subs.append(
                await js.subscribe(
                    names.kv_subject(bucket, self.config.region),
                    stream=stream,
                    cb=on_change,
                    ordered_consumer=True,
                    deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT,
                    idle_heartbeat=2.0,
                )
            )
        if self.config.prefetch or self.mirrored:
            self._subs.append(
                await js.subscribe(
                    names.meta_subject_all(names.BUNDLES_BUCKET),
                    stream=names.BUNDLES_STREAM,
                    cb=self._on_object,
                    ordered_consumer=True,
                    deliver_policy=api.DeliverPolicy.NEW,
                    idle_heartbeat=2.0,
                )
            )

    async def _on_object(self, msg: Any) -> None:
        """An object's meta document arrived: a manifest means a whole version was published."""
        try:
            info = json.loads(msg.data or b"{}")
        except ValueError as e:
            log.warning("region %s: unreadable object meta on %s: %s", self.config.region, msg.subject, e)
            return
        version, _, file = str(info.get("name", "")).partition("/")
        if self.mirrored:
            self._track(str(info.get("name", "")), str(info.get("nuid") or ""), bool(info.get("deleted")))
        if info.get("deleted"):
            if file == names.MANIFEST_OBJECT and assign.valid_version(version):
                self._published = [v for v in self._published if v != version]
                self._gone.add(version)
            self._wake.set()
            return
        if file != names.MANIFEST_OBJECT or not version or not self.config.prefetch:
            return
        self._gone.discard(version)
        try:
            assign.check_version(version)
        except ReplicatorError as e:
            log.warning("region %s: not prefetching %r: %s", self.config.region, version, e)
            return
        if version not in self._published:
            self._published.append(version)
            self._wake.set()

    async def desired(self, js: JetStreamContext) -> assign.Assignment | None:
        r = self.config.region
        hub = await promotions.read_stream_key(js, names.PROMOTIONS_STREAM, names.PROMOTIONS_BUCKET, r)
        override = None
        if self.mirrored:
            override = await promotions.read_stream_key(js, names.OVERRIDES_STREAM, names.OVERRIDES_BUCKET, r)
        return assign.effective(hub, override)

    async def reconcile(self, js: JetStreamContext) -> assign.Assignment | None:
        want = await self.desired(js)
        if want is None:
            self._prefetch(js)
            return None
        for version in want.versions():
            if not self.region.has(version) and version not in self.refused:
                await self._fetch(js, version)
        current = self.region.read_assignment()
        have = self.region.has
        champion = want.champion if have(want.champion) else (current.champion if current else None)
        challenger = want.challenger if have(want.challenger) else None
        new = assign.Assignment(
            region=want.region,
            champion=champion,
            previous=tuple(v for v in want.previous if have(v) and v != champion),
            challenger=challenger,
            percent=want.percent if challenger else 0.0,
            experiment=want.experiment if challenger else "",
            shadow=want.shadow if have(want.shadow) else None,
            generation=want.generation,
            base_generation=want.base_generation,
            source=want.source,
            write_id=want.write_id,
            updated_at=want.updated_at,
            extra={
                "wanted": want.versions(),
                "refused": {v: self.refused[v] for v in want.versions() if v in self.refused},
            },
        )
        if champion != want.champion:
            log.error(
                "region %s: keeping champion %s; wanted %s: %s",
                want.region, champion, want.champion, self.refused.get(str(want.champion), "not fetched yet"),
            )  # fmt: skip
        if current is None or current.to_json() != new.to_json():
            self.region.write_assignment(new)
            log.info(
                "region %s: assigned champion %s, challenger %s (%.1f%%), shadow %s",
                want.region, new.champion, new.challenger, new.percent, new.shadow,
            )  # fmt: skip
        self.region.prune(set(new.versions()), self.config.keep)
        self._prefetch(js)
        return new

    def _prefetch(self, js: JetStreamContext) -> None:
        """Start background downloads of published versions not on disk (the newest ``keep`` of them)."""
        self._published = [v for v in self._published if not self.region.has(v) and v not in self.refused]
        for version in self._published[-self.config.keep :]:
            if version not in self._fetches:
                log.info("region %s: prefetching %s", self.config.region, version)
                self._start_fetch(js, version).add_done_callback(self._prefetch_done)

    def _track(self, name: str, nuid: str, deleted: bool) -> None:
        """Note what to purge from the mirror: a deleted object's chunks, and an object's old chunks when it was
        stored again under its name (on the hub, the put purged them)."""
        old = self._nuids.pop(name, None)
        if deleted:
            self._deleted.append(nuid)
        else:
            self._nuids[name] = nuid
        if old and old != nuid:
            self._deleted.append(old)
        if self._deleted:
            self._wake.set()

    async def _purge_mirror(self, js: JetStreamContext) -> None:
        """Purge what the hub deleted from the leaf's mirror: a sweep at start and every ``sweep_s``, and the
        deletions seen as they arrive."""
        c = self.config
        if self._swept_at is None or time.monotonic() - self._swept_at >= c.sweep_s:
            live = await sweep(js, self._purged, c.orphans_after_s)
            self._nuids = {**live, **self._nuids}  # what arrived meanwhile is newer
            self._swept_at = time.monotonic()
        while self._deleted:
            nuids, self._deleted = self._deleted, []
            try:
                await purge_chunks(js, nuids, self._purged)
            except BaseException:
                self._deleted = nuids + self._deleted  # retried at the next wake-up
                raise

    def _drop_gone(self) -> None:
        """Remove the partial downloads of versions the hub deleted (once no download of them runs)."""
        for version in sorted(self._gone):
            if version not in self._fetches:
                self.region.discard(self.region.staging(version))
                self._gone.discard(version)

    def _prefetch_done(self, task: asyncio.Future[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:  # a transfer error: retried on a later wake-up (the version stays published)
            metrics.TRANSFER_ERRORS.inc()
            log.warning("region %s: prefetch failed: %s: %s", self.config.region, type(error).__name__, error)
            asyncio.get_running_loop().call_later(self.config.retry_s, self._wake.set)
        else:
            self._wake.set()

    def _start_fetch(self, js: JetStreamContext, version: str) -> asyncio.Future[None]:
        task = self._fetches.get(version)
        if task is None:
            task = asyncio.ensure_future(self._download(js, version))
            self._fetches[version] = task
            task.add_done_callback(lambda _: self._fetches.pop(version, None))
        return task

    async def _fetch(self, js: JetStreamContext, version: str) -> None:
        """Fetch ``version``, or wait for its download already in progress (a prefetch)."""
        await asyncio.shield(self._start_fetch(js, version))

    async def _download(self, js: JetStreamContext, version: str) -> None:
        t0 = time.perf_counter()
        try:
            await fetch_version(js, version, self.region, self.trusted, self.config.progress, self.config.write)
        except VerificationError as e:
            self.refused[version] = str(e)
            metrics.REFUSED.labels(reason="verification").inc()
            log.error("region %s: refusing bundle %s: %s", self.config.region, version, e)
            return
        except DiskFull as e:
            metrics.REFUSED.labels(reason="disk").inc()
            log.error("region %s: %s", self.config.region, e)
            raise TransferError(str(e)) from e
        metrics.FETCHED.inc()
        log.info("region %s: fetched and verified %s in %.2f s", self.config.region, version, time.perf_counter() - t0)

    async def report_nodes(self, hub_js: JetStreamContext) -> None:
        """Copy the nodes' reports to the hub's nodes bucket (best effort: the hub may be away)."""
        reports = self.region.node_reports()
        if not reports:
            return
        try:
            kv = await key_value(hub_js, names.NODES_BUCKET, self.config.hub_domain if self.mirrored else None)
            for node_id, report in reports.items():
                body = json.dumps(report, sort_keys=True)
                if self._reported.get(node_id) != body:
                    await kv.put(f"{self.config.region}.{node_id}", body.encode())
                    self._reported[node_id] = body
        except (nats.errors.Error, TimeoutError, ReplicatorError) as e:
            metrics.HUB_WRITE_ERRORS.inc()
            log.warning("region %s: cannot report nodes to the hub: %s", self.config.region, e)
