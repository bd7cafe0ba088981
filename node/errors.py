"""Domain errors of the node; the interceptor maps each to a gRPC status code."""

from __future__ import annotations


class EdgerankError(Exception):
    """Base of the node's domain errors."""


class InvalidArgument(EdgerankError):
    """A request field is malformed. The message is ``"field: reason"``."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotReady(EdgerankError):
    """The node has no warm bundle to serve from."""


class DeadlineExceeded(EdgerankError):
    """The caller's own deadline cannot be met."""


class RemoteError(EdgerankError):
    """A call to another node failed; the message is ``"CODE: details"``."""
