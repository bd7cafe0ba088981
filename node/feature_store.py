"""Where the pipeline gets a user's features.

A :class:`FeatureStore` is made per bundle (``factory(bundle)``): the values
it returns must match that bundle's feature schema and embedding space. The
embedded store serves the bundle's own batch user features. The online store
(Redis, :mod:`node.online_store`) implements the same protocol and checks each
value's schema hash and embedding space against the bundle's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from node.bundle import LoadedBundle
from node.types import UserState
from trainer import features as feature_defs


class FeatureStore(Protocol):
    def get(self, user_id: str, session_id: str = "", now: float | None = None) -> UserState | None:
        """The user's state as of ``now`` (the request time; None = the clock), or None for a user the
        store does not know. May raise.

        ``now`` is the request time of the session block (trainer.features.session_block).
        """
        ...


class StaleFeatures(Exception):
    """The online store cannot answer fresh within its budget; ``state`` is its best stale answer.

    ``state`` is None when the store has nothing usable: the pipeline then uses
    the bundle's batch features. Either way the response is STALE_FEATURES.
    """

    def __init__(self, reason: str, state: UserState | None = None):
        super().__init__(reason)
        self.state = state


FeatureStoreFactory = Callable[[LoadedBundle], FeatureStore]


class EmbeddedFeatureStore:
    """The bundle's batch user features (``user_*.npy``); never stale relative to the bundle.

    Their session block is empty: a request after the bundle's data has no
    batch interaction in its session window (a window ends at the request).
    """

    def __init__(self, bundle: LoadedBundle):
        self._bundle = bundle
        self._genres = len(bundle.genres)

    def get(self, user_id: str, session_id: str = "", now: float | None = None) -> UserState | None:
        b = self._bundle
        row = b.user_index.get(user_id)
        if row is None:
            return None
        dense = b.user_dense[row]
        start, end = int(b.user_seen_indptr[row]), int(b.user_seen_indptr[row + 1])
        return UserState(
            dense=dense,
            embedding=b.user_emb[row],
            genre=feature_defs.user_genre(dense, self._genres),
            last_ts=float(b.user_last_ts[row]),
            seen=b.user_seen_items[start:end],
        )
