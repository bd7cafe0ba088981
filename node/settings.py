"""The node's one settings object, read once at start-up and passed down.

Each field comes from, in order: a command-line flag (``overrides``, keyed by
field name), the ``EDGERANK_<NAME>`` environment variable, the default.
Nothing else in the node reads the environment.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "EDGERANK_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """A setting has a bad value; the message names the flag or env var."""


@dataclass(frozen=True)
class Settings:
    # Where bundles are: a bundle root holding LATEST, or one bundle directory.
    bundle_dir: Path = Path("bundles")
    host: str = "127.0.0.1"
    # 0 binds a free port.
    port: int = 50051
    # gRPC thread-pool size.
    workers: int = 8
    # The node's latency budget per request, ms (the ladder's deadline cap).
    budget_ms: float = 50.0
    default_pool_size: int = 500
    max_pool_size: int = 5000
    max_num_results: int = 1000
    max_exclude_ids: int = 1000
    max_events: int = 1000
    max_id_len: int = 128
    # Re-ranking: at most this many items of one primary genre in the list.
    max_per_genre: int = 3
    # Exploration rate: the share of slots given to exploration.
    epsilon: float = 0.0
    # Candidate quotas, as fractions of the pool size, in priority order.
    quota_ann: float = 0.7
    quota_session: float = 0.1
    quota_trending: float = 0.1
    quota_fresh: float = 0.1
    # Neighbours of the user's latest item retrieved for session continuation.
    session_k: int = 50
    region: str = "local"
    log_level: str = "INFO"
    # Seconds in-flight requests get to finish on a graceful stop.
    grace_s: float = 5.0

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Settings:
        """Build the settings from flags (``overrides``, None values ignored), env, defaults."""
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        env = os.environ if env is None else env
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for f in fields(cls):
            var = ENV_PREFIX + f.name.upper()
            if f.name in overrides:
                sources[f.name] = f"--{f.name.replace('_', '-')}"
                values[f.name] = _parse(sources[f.name], f.type, overrides[f.name])
            elif var in env:
                sources[f.name] = var
                values[f.name] = _parse(var, f.type, env[var])
        settings = cls(**values)
        settings.check(sources)
        return settings

    def replace(self, **changes: Any) -> Settings:
        new = dataclasses.replace(self, **changes)
        new.check()
        return new

    def check(self, sources: Mapping[str, str] | None = None) -> None:
        """Range and cross-field checks; errors name the flag or env var a value came from."""
        sources = sources or {}

        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                label = sources.get(name, ENV_PREFIX + name.upper())
                raise SettingsError(f"{label}: {what}, got {getattr(self, name)!r}")

        need(0 <= self.port <= 65535, "port", "must be in [0, 65535]")
        for name in (
            "workers",
            "default_pool_size",
            "max_pool_size",
            "max_num_results",
            "max_id_len",
            "max_events",
        ):
            need(getattr(self, name) >= 1, name, "must be at least 1")
        for name in ("max_exclude_ids", "max_per_genre", "session_k"):
            need(getattr(self, name) >= 0, name, "must not be negative")
        need(self.budget_ms > 0, "budget_ms", "must be positive")
        need(self.grace_s >= 0, "grace_s", "must not be negative")
        need(
            self.default_pool_size <= self.max_pool_size,
            "default_pool_size",
            "must not exceed max_pool_size",
        )
        need(
            self.max_num_results <= self.max_pool_size,
            "max_num_results",
            "must not exceed max_pool_size",
        )
        need(0.0 <= self.epsilon <= 1.0, "epsilon", "must be in [0, 1]")
        for name in ("quota_ann", "quota_session", "quota_trending", "quota_fresh"):
            need(0.0 <= getattr(self, name) <= 1.0, name, "must be in [0, 1]")
        need(
            self.log_level in LOG_LEVELS,
            "log_level",
            f"must be one of {', '.join(LOG_LEVELS)}",
        )


def _parse(name: str, kind: Any, raw: Any) -> Any:
    kind = {"Path": Path, "str": str, "int": int, "float": float}.get(kind, kind) if isinstance(kind, str) else kind
    if kind is Path:
        return Path(raw)
    if kind is str:
        return str(raw).upper() if name.lower().endswith("log_level") else str(raw)
    if kind is int:
        if isinstance(raw, bool):
            raise SettingsError(f"{name}: not an integer: {raw!r}")
        try:
            return int(str(raw).strip())
        except ValueError:
            raise SettingsError(f"{name}: not an integer: {raw!r}") from None
    if kind is float:
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise SettingsError(f"{name}: not a number: {raw!r}") from None
        if not math.isfinite(value):
            raise SettingsError(f"{name}: not a finite number: {raw!r}")
        return value
    raise SettingsError(f"{name}: unsupported setting type {kind!r}")
