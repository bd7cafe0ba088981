"""The bundle the node serves, behind one reference.

A request takes one :meth:`BundleHolder.snapshot` at its start and uses only
that bundle, so a response is never built from two bundle versions.
:meth:`swap` replaces the reference atomically; requests in flight finish on
the bundle they took. The previous bundle stays loaded for a rollback.
"""

from __future__ import annotations

import threading

from node.bundle import LoadedBundle
from node.errors import NotReady


class BundleHolder:
    def __init__(self, bundle: LoadedBundle | None = None):
        self._lock = threading.Lock()
        self._current = bundle
        self._previous: LoadedBundle | None = None

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
            if old is not None and old is not bundle:
                self._previous = old
            return old

    def rollback(self) -> LoadedBundle:
        """Serve the previous bundle again."""
        with self._lock:
            if self._previous is None:
                raise NotReady("no previous bundle to roll back to")
            self._current, self._previous = self._previous, self._current
            return self._current
