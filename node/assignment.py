"""Follow the region's assignment file (written by ``edgerank replicate``) and hot-swap bundles.

A background thread polls ``<dir>/assignment.json``. When it changes, every
version it names is loaded and warmed beside what is served (versions already
loaded are reused: previous champions stay loaded, so a rollback is one
reference swap), then champion, challenger and shadow are swapped in as one
:class:`~node.bundle_holder.Routing`. A version that fails to load or warm is
not served: the node keeps what it served, logs why and counts it. The node
reports what it serves to ``<dir>/nodes/<node_id>.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from pathlib import Path

from node.bundle import LoadedBundle
from node.bundle_holder import Routing
from node.server import Node
from replicator import metrics, names
from replicator.assignment import Assignment
from replicator.errors import PromotionError
from trainer.bundle import BundleError, write_atomic

log = logging.getLogger(__name__)

POLL_S = 0.05
KEEP_LOADED_PREVIOUS = 1  # previous champions kept warm for an instant rollback
# The node rewrites its report this often even when nothing changed: its time tells `edgerank status` that the
# node is alive (one older than replicator.cli.status.STALE_S is shown as stale).
REPORT_S = 5.0


def assignment_path(directory: Path) -> Path:
    return Path(directory) / names.ASSIGNMENT_FILE


class AssignmentWatcher:
    def __init__(
        self,
        node: Node,
        directory: Path,
        node_id: str | None = None,
        poll_s: float = POLL_S,
        report_s: float = REPORT_S,
    ):
        self.node, self.directory, self.poll_s, self.report_s = node, Path(directory), poll_s, report_s
        self._reported_at = float("-inf")
        self.node_id = node_id or f"{os.uname().nodename}-{os.getpid()}"
        self.loaded: dict[str, LoadedBundle] = {}
        self.failed: dict[str, str] = {}
        self.applied: Assignment | None = None
        self._seen: bytes | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.changed = threading.Condition()

    def start(self) -> AssignmentWatcher:
        self._thread = threading.Thread(target=self._run, name="assignment", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self.report(health="STOPPED")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_once()
                # Until the replicator has made the region's directory, there is nowhere to report to.
                if time.monotonic() - self._reported_at >= self.report_s and self.directory.is_dir():
                    self.report()
            except Exception:  # the thread must survive anything; each failure is logged and counted
                metrics.SWAP_FAILURES.inc()
                log.exception("assignment watcher failed; keeping the served bundle")
            self._stop.wait(self.poll_s)

    def check_once(self) -> bool:
        """Apply the assignment file if it changed; True if something was swapped in."""
        try:
            raw = assignment_path(self.directory).read_bytes()
        except FileNotFoundError:
            return False
        if raw == self._seen:
            return False
        self._seen = raw
        try:
            wanted = Assignment.from_json(raw)
        except PromotionError as e:
            metrics.SWAP_FAILURES.inc()
            log.error("unreadable %s: %s; keeping the served bundle", assignment_path(self.directory), e)
            return False
        swapped = self.apply(wanted)
        with self.changed:
            self.changed.notify_all()
        return swapped

    def _get(self, version: str | None) -> LoadedBundle | None:
        if not version:
            return None
        if version in self.loaded:
            return self.loaded[version]
        if version in self.failed:
            return None
        try:
            log.info("loading bundle %s beside the served one", version)
            bundle = self.node.prepare_bundle(self.directory / version)
        except BundleError as e:
            self.failed[version] = str(e)
            metrics.SWAP_FAILURES.inc()
            log.error("not serving bundle %s: %s", version, e)
            return None
        self.loaded[version] = bundle
        return bundle

    def apply(self, a: Assignment) -> bool:
        champion = self._get(a.champion)
        if champion is None:
            log.error("assignment names champion %s, which cannot be served; keeping what is served", a.champion)
            self.report()
            return False
        challenger = self._get(a.challenger)
        routing = Routing(
            champion=champion,
            challenger=challenger,
            percent=a.percent if challenger is not None else 0.0,
            experiment=a.experiment,
            shadow=self._get(a.shadow),
        )
        self.node.serve_routing(routing)
        metrics.SWAPS.inc()
        self.applied = a
        keep = {a.champion, a.challenger, a.shadow, *a.previous[:KEEP_LOADED_PREVIOUS]}
        for version in [v for v in self.loaded if v not in keep]:
            # In-flight requests keep their own reference; the pages go a piece at a time first.
            self.loaded.pop(version).release()
        self.report()
        return True

    def report(self, health: str | None = None) -> None:
        """Write what this node serves to ``<dir>/nodes/<node_id>.json`` (the replicator copies it to the hub)."""
        routing = self.node.holder.routing
        body = {
            "node_id": self.node_id,
            "region": self.node.settings.region,
            "target": self.node.target,
            "serving": routing.champion.version if routing else None,
            "challenger": routing.challenger.version if routing and routing.challenger else None,
            "percent": routing.percent if routing else 0.0,
            "shadow": routing.shadow.version if routing and routing.shadow else None,
            "health": health or ("SERVING" if routing else "NOT_SERVING"),
            "refused": dict(self.failed),
            "ts": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        nodes = self.directory / names.NODES_DIR
        nodes.mkdir(exist_ok=True)
        write_atomic(nodes / f"{self.node_id}.json", json.dumps(body, sort_keys=True).encode())
        self._reported_at = time.monotonic()
