"""The bundle the node serves, behind one reference.

A request takes one :meth:`BundleHolder.snapshot` at its start and uses only
that bundle, so a response is never built from two bundle versions.
:meth:`swap` replaces the reference atomically; requests in flight finish on
the bundle they took. The previous bundle stays loaded for a rollback.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from node.bundle import LoadedBundle
from node.errors import NotReady
from replicator.assignment import ARM_CHALLENGER, ARM_CHAMPION, arm_for


@dataclass(frozen=True)
class Routing:
    """Where a region's traffic goes: one reference, replaced as a whole."""

    champion: LoadedBundle
    challenger: LoadedBundle | None = None
    percent: float = 0.0  # share of users (0-100) on the challenger
    experiment: str = ""
    shadow: LoadedBundle | None = None


class BundleHolder:
    def __init__(self, bundle: LoadedBundle | None = None):
        self._lock = threading.Lock()
        self._current = bundle
        self._previous: LoadedBundle | None = None
        self._routing: Routing | None = None if bundle is None else Routing(bundle)

    def snapshot(self) -> LoadedBundle:
        """The current bundle; raises NotReady when none has been loaded yet."""
        current = self._current  # one read of one reference
        if current is None:
            raise NotReady("no bundle loaded yet")
        return current

    @property
    def ready(self) -> bool:
        return self._current is not None

    @property
    def previous(self) -> LoadedBundle | None:
        return self._previous

    def swap(self, bundle: LoadedBundle) -> LoadedBundle | None:
        """Serve ``bundle`` from now on; returns the bundle it replaces."""
        with self._lock:
            old, self._current = self._current, bundle
            self._routing = Routing(bundle)
            if old is not None and old is not bundle:
                self._previous = old
            return old

    def set_routing(self, routing: Routing) -> LoadedBundle | None:
        """Serve ``routing`` (champion, canary, shadow) from now on; returns the champion it replaces."""
        with self._lock:
            old, self._current, self._routing = self._current, routing.champion, routing
            if old is not None and old is not routing.champion:
                self._previous = old
            return old

    def loaded(self) -> list[LoadedBundle]:
        """The bundles this holder references: served (champion, challenger, shadow) or kept for a rollback."""
        routing = self._routing
        found = [self._current, self._previous]
        if routing is not None:
            found += [routing.champion, routing.challenger, routing.shadow]
        unique: dict[int, LoadedBundle] = {id(b): b for b in found if b is not None}
        return list(unique.values())

    @property
    def routing(self) -> Routing | None:
        return self._routing

    def route(self, user_id: str) -> tuple[LoadedBundle, str]:
        """The bundle and arm for ``user_id`` (a deterministic hash of user and experiment)."""
        routing = self._routing  # one read of one reference
        if routing is None:
            raise NotReady("no bundle loaded yet")
        if routing.challenger is not None and arm_for(user_id, routing.experiment, routing.percent) == ARM_CHALLENGER:
            return routing.challenger, ARM_CHALLENGER
        return routing.champion, ARM_CHAMPION

    def rollback(self) -> LoadedBundle:
        """Serve the previous bundle again."""
        with self._lock:
            if self._previous is None:
                raise NotReady("no previous bundle to roll back to")
            self._current, self._previous = self._previous, self._current
            self._routing = Routing(self._current)
            return self._current
