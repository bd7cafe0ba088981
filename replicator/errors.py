"""The replicator's exceptions. The command line prints any of them as one line and exits 2."""

from __future__ import annotations


class ReplicatorError(Exception):
    """Base of everything the replicator refuses or cannot do."""


class GateRefused(ReplicatorError):
    """A validation gate refused a bundle at publish time."""

    def __init__(self, gate: str, reason: str):
        super().__init__(f"gate {gate} refused the bundle: {reason}")
        self.gate = gate
        self.reason = reason


class VerificationError(ReplicatorError):
    """A replicated bundle fails verification: signature, checksum, size or file names."""


class PromotionError(ReplicatorError):
    """A promotion cannot be applied: unknown version, nothing to roll back, a lost race."""


class TransferError(ReplicatorError):
    """A transfer to or from JetStream failed (a break, a timeout, a missing object)."""


class StoreFull(TransferError):
    """The JetStream server has no room left for an upload (its store is at ``max_file_store``)."""
