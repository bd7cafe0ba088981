"""A region's promotion state (what the hub's KV holds per region) and the pure operations on it.

The same JSON document is the value of the ``edgerank-promotions`` key for a
region, the value of a local override, and, narrowed to what the region has
verified on disk, the ``assignment.json`` the node follows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from replicator.errors import PromotionError

KEEP_PREVIOUS = 5
ARM_CHAMPION = "champion"
ARM_CHALLENGER = "challenger"
REGION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_region(region: str) -> str:
    if not REGION_RE.match(region):
        raise PromotionError(f"region: must match {REGION_RE.pattern}, got {region!r}")
    return region


def valid_version(version: str) -> bool:
    return bool(VERSION_RE.match(version)) and ".." not in version


def check_version(version: str) -> str:
    if not valid_version(version):
        raise PromotionError(f"version: must match {VERSION_RE.pattern}, got {version!r}")
    return version


@dataclass(frozen=True)
class Assignment:
    region: str
    champion: str | None = None
    previous: tuple[str, ...] = ()  # newest first
    challenger: str | None = None
    percent: float = 0.0  # share of users (0-100) on the challenger
    experiment: str = ""  # salt of the user hash that picks the arm
    shadow: str | None = None
    generation: int = 0  # +1 on every write
    base_generation: int = 0  # for a local override: the hub generation it overrides
    source: str = "hub"  # "hub" or "local-override"
    write_id: str = ""
    updated_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # replicator notes (errors, desired state)

    def versions(self) -> list[str]:
        """Every version this state references, most important first."""
        out: list[str] = []
        for v in (self.champion, self.challenger, self.shadow, *self.previous):
            if v and v not in out:
                out.append(v)
        return out

    def to_json(self) -> bytes:
        d = dataclasses.asdict(self)
        d["previous"] = list(self.previous)
        return json.dumps(d, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Assignment:
        try:
            d = json.loads(data)
            d["previous"] = tuple(d.get("previous") or ())
            known = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in d.items() if k in known})
        except (ValueError, TypeError, KeyError) as e:
            raise PromotionError(f"not a promotion state document: {e}") from e

    def bump(self, **changes: Any) -> Assignment:
        return dataclasses.replace(
            self,
            generation=self.generation + 1,
            write_id=uuid.uuid4().hex,
            updated_at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            **changes,
        )

    def same_target(self, other: Assignment) -> bool:
        """Whether two states ask for the same thing (ignoring bookkeeping)."""
        keys = ("champion", "challenger", "percent", "experiment", "shadow")
        return all(getattr(self, k) == getattr(other, k) for k in keys)


def promote(a: Assignment, version: str) -> Assignment:
    check_version(version)
    if a.champion == version:
        return a
    previous = tuple(v for v in ((a.champion,) if a.champion else ()) + a.previous if v != version)[:KEEP_PREVIOUS]
    challenger = None if a.challenger == version else a.challenger
    return a.bump(
        champion=version,
        previous=previous,
        challenger=challenger,
        percent=a.percent if challenger else 0.0,
        experiment=a.experiment if challenger else "",
    )


def rollback(a: Assignment) -> Assignment:
    if not a.previous:
        raise PromotionError(f"region {a.region}: no previous version to roll back to (champion {a.champion})")
    return a.bump(champion=a.previous[0], previous=a.previous[1:], challenger=None, percent=0.0, experiment="")


def canary(a: Assignment, version: str, percent: float) -> Assignment:
    check_version(version)
    if not 0.0 <= percent <= 100.0:
        raise PromotionError(f"--percent: must be in [0, 100], got {percent}")
    if a.champion is None:
        raise PromotionError(f"region {a.region}: has no champion; promote one before a canary")
    if percent == 0.0:
        return a.bump(challenger=None, percent=0.0, experiment="")
    return a.bump(challenger=version, percent=percent, experiment=f"canary-{version}")


def shadow(a: Assignment, version: str | None) -> Assignment:
    if version is not None:
        check_version(version)
    return a.bump(shadow=version)


def effective(hub: Assignment | None, override: Assignment | None) -> Assignment | None:
    """A local override wins until the hub writes a newer generation than the one it overrode."""
    if override is not None and (hub is None or override.base_generation >= hub.generation):
        return override
    return hub


def arm_for(user_id: str, experiment: str, percent: float) -> str:
    """The arm of ``user_id``: a deterministic hash of (experiment, user) against ``percent``."""
    if percent <= 0.0:
        return ARM_CHAMPION
    digest = hashlib.blake2b(f"{experiment}|{user_id}".encode(), digest_size=8).digest()
    bucket = int.from_bytes(digest, "little") % 10_000
    return ARM_CHALLENGER if bucket < percent * 100.0 else ARM_CHAMPION
