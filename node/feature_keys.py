"""Where the online features live in Redis: one place for the key layout.

Every key of a user carries the hash tag ``{u:<user>}``, so that in a Redis
Cluster they share a slot and the updater's script may touch them together.

* ``er:{u:U}:state``      the packed user state (:mod:`node.user_value`)
* ``er:{u:U}:hist``       recent interactions, oldest first, bounded (a list)
* ``er:{u:U}:counts``     event counts by type, and NEGATIVE (a hash)
* ``er:{u:U}:s:S``        the events of session S, with a TTL (a list)
* ``er:{u:U}:ev:E``       event E was applied (idempotency mark, with a TTL)
"""

from __future__ import annotations

PREFIX = "er"


def _user(user_id: str) -> str:
    return f"{PREFIX}:{{u:{user_id}}}"


def state(user_id: str) -> str:
    return f"{_user(user_id)}:state"


def history(user_id: str) -> str:
    return f"{_user(user_id)}:hist"


def counts(user_id: str) -> str:
    return f"{_user(user_id)}:counts"


def session(user_id: str, session_id: str) -> str:
    return f"{_user(user_id)}:s:{session_id}"


def applied(user_id: str, event_id: str) -> str:
    return f"{_user(user_id)}:ev:{event_id}"
