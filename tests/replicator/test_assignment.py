"""Promotion state operations and the canary arm hash (pure; no servers)."""

from __future__ import annotations

import pytest

from replicator import assignment as A
from replicator.errors import PromotionError


def test_promote_rollback_keeps_history() -> None:
    a = A.promote(A.promote(A.Assignment("eu-west"), "v1"), "v2")
    assert (a.champion, a.previous, a.generation) == ("v2", ("v1",), 2)
    assert A.promote(a, "v2") is a  # idempotent
    b = A.rollback(a)
    assert (b.champion, b.previous) == ("v1", ())
    with pytest.raises(PromotionError, match="no previous version"):
        A.rollback(b)
    assert A.Assignment.from_json(a.to_json()) == a


def test_canary_and_override_precedence() -> None:
    a = A.canary(A.promote(A.Assignment("eu-west"), "v1"), "v2", 25.0)
    assert (a.challenger, a.percent, a.versions()) == ("v2", 25.0, ["v1", "v2"])
    with pytest.raises(PromotionError, match="percent"):
        A.canary(a, "v2", 101.0)
    override = A.rollback(A.promote(a, "v3")).bump(base_generation=a.generation + 1)
    assert A.effective(A.promote(a, "v3"), override) is override
    newer = A.promote(A.promote(a, "v3"), "v4")
    assert A.effective(newer, override) is newer
    with pytest.raises(PromotionError, match="version"):
        A.promote(a, "../../x")


def test_arm_is_deterministic_and_near_the_percentage() -> None:
    users = [f"user-{k}" for k in range(20_000)]
    arms = [A.arm_for(u, "canary-v2", 10.0) for u in users]
    assert arms == [A.arm_for(u, "canary-v2", 10.0) for u in users]
    share = arms.count(A.ARM_CHALLENGER) / len(users)
    assert 0.09 < share < 0.11, share
    assert all(A.arm_for(u, "canary-v2", 0.0) == A.ARM_CHAMPION for u in users[:100])
    assert all(A.arm_for(u, "canary-v2", 100.0) == A.ARM_CHALLENGER for u in users[:100])
