"""The queries a node served last, one per user and surface: what a new bundle's warm-up replays.

A new version's files are other pages of memory than those of the version it replaces. The requests'
working set on it (the users' rows, their candidates' item rows, the IVF lists their embeddings probe)
starts cold in the CPU caches, however resident its pages are; the golden requests touch little of it.
Replaying the users just served through the new bundle before it serves brings in what the next requests
will touch, as a search engine re-runs its recent queries against a new index before opening it.
"""

from __future__ import annotations

import dataclasses
import threading

from node.types import RankQuery

# After each replayed query the warm-up sleeps this many times as long as the query took: it takes at most a
# quarter of a core and of the GIL from the requests it runs beside. At 1 ms pauses (about 60% of each), many of
# the slowest requests of `bench replication`'s swaps fell in the replay (BENCHMARKS.md, replication, session (11)).
REPLAY_IDLE = 3.0


class RecentQueries:
    """The last ``capacity`` distinct (user, surface) queries ranked, oldest first; 0 keeps none.

    ``note`` is on every request's path: one dict update under an uncontended lock (the offload pool's
    threads may note at once).
    """

    def __init__(self, capacity: int):
        if capacity < 0:
            raise ValueError(f"capacity must not be negative, got {capacity}")
        self.capacity = capacity
        self._queries: dict[tuple[str, str], RankQuery] = {}
        self._lock = threading.Lock()

    def note(self, query: RankQuery) -> None:
        if self.capacity == 0:
            return
        key = (query.user_id, query.surface)
        with self._lock:
            queries = self._queries
            queries.pop(key, None)  # to the end: the most recent
            queries[key] = query
            if len(queries) > self.capacity:
                del queries[next(iter(queries))]

    def replay(self) -> list[RankQuery]:
        """The queries to replay, oldest first, without what was particular to each request: its id,
        its clock and its deadline (a replay runs at the node's budget, now)."""
        with self._lock:
            queries = list(self._queries.values())
        return [dataclasses.replace(q, request_id="", now_ts=None, budget_s=None) for q in queries]

    def __len__(self) -> int:
        return len(self._queries)
