"""Where the online features live in Redis: one place for the key layout.

Every key of a user carries the hash tag ``{u:<user>}``, so that in a Redis
Cluster they share a slot and the updater's script may touch them together.

* ``er:{u:U}:state``      the packed user state (:mod:`node.user_value`)
* ``er:{u:U}:sv``         the history version the state was computed from
* ``er:{u:U}:hist``       recent interactions, oldest first, bounded (a list)
* ``er:{u:U}:hv``         the history's version: incremented on every change
* ``er:{u:U}:seeded``     the history was seeded from a bundle's batch interactions
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


def state_version(user_id: str) -> str:
    return f"{_user(user_id)}:sv"


def history(user_id: str) -> str:
    return f"{_user(user_id)}:hist"


def history_version(user_id: str) -> str:
    return f"{_user(user_id)}:hv"


def seeded(user_id: str) -> str:
    return f"{_user(user_id)}:seeded"


# SCAN pattern of every user's history key ("{" and "}" are not special in Redis patterns).
HISTORY_PATTERN = f"{PREFIX}:{{u:*}}:hist"


def user_of_history(key: bytes | str) -> str:
    """The user id in a history key."""
    text = key.decode() if isinstance(key, bytes) else key
    head, tail = f"{PREFIX}:{{u:", "}:hist"
    if not (text.startswith(head) and text.endswith(tail)):
        raise ValueError(f"{text!r} is not a history key")
    return text[len(head) : -len(tail)]


def counts(user_id: str) -> str:
    return f"{_user(user_id)}:counts"


def session(user_id: str, session_id: str) -> str:
    return f"{_user(user_id)}:s:{session_id}"


def applied(user_id: str, event_id: str) -> str:
    return f"{_user(user_id)}:ev:{event_id}"


# The header (node.user_value.header) of the bundle the last complete sweep rewrote every state for.
SWEPT = f"{PREFIX}:swept"
