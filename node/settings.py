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

from trainer.ivf import NPROBE as IVF_NPROBE

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
    # Threads per server process for calls that may block on I/O (a Rank that reads Redis or logs
    # exposures, Events.Log with NATS); the others run on the gRPC event loop. Requests hold the GIL,
    # so more threads only queue; two let one request run while another waits on Redis (README, "Sizing a node").
    workers: int = 2
    # Server processes sharing the port (SO_REUSEPORT); about one per core (README, "Sizing a node").
    processes: int = 1
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
    # Lists of the IVF index the user retrieval scans (more: better recall, more time; BENCHMARKS.md, "IVF").
    ivf_nprobe: int = IVF_NPROBE
    # Lock the serving bundles' mapped files in memory (mlock; needs CAP_IPC_LOCK or a large enough
    # RLIMIT_MEMLOCK, else they are only faulted in, with a warning): page-cache pressure from the
    # replicator's downloads then cannot evict them from under the requests (node/prefault.py).
    lock_bundle: bool = True
    # Lock the node's code (the interpreter, its libraries, the extension modules: about 170 MB, shared) in
    # memory after each load, so that the paths a swap or a rollback takes are not evicted between two of
    # them (node/prefault.py); same needs and fallback as lock_bundle. Off by default: in `bench
    # replication` it did not make the large stalls rarer (README, "Sizing a node").
    lock_code: bool = False
    # Recently served queries (one per user and surface) a new bundle answers before it serves, so that
    # what the next requests touch is warm in the CPU caches (node/recent.py); 0: the golden requests only.
    # Off by default: it lowers the mean of a new version's first seconds but lengthens the warm-up, and
    # in `bench replication` the swap's P99.9 was no better with it (README, "Sizing a node").
    warm_up_queries: int = 0
    region: str = "local"
    # Replication (replicator/, which uses nats_url below, nats://127.0.0.1:4222 when
    # empty): the hub's JetStream domain, the public key bundles must be signed
    # by, the trainer's private key.
    hub_domain: str = "hub"
    trusted_key: str = ""
    signing_key: str = ""
    # Verified bundle versions a region keeps on disk besides those assigned.
    keep_versions: int = 3
    # Published versions the hub keeps besides those a region's promotion state names: `edgerank publish`
    # deletes older ones first, the one it publishes counting as one (replicator/retention.py); 0: it never does.
    keep_published: int = 5
    log_level: str = "INFO"
    # Seconds in-flight requests get to finish on a graceful stop.
    grace_s: float = 5.0
    # Port of the Prometheus /metrics endpoint; 0 = no endpoint.
    metrics_port: int = 0
    # Drills (tests and game days): slow the ranker by this many ms per request,
    # or make the ANN index fail. Both off in production.
    drill_ranker_delay_ms: float = 0.0
    drill_index_down: bool = False

    # Online features and the feedback loop (issue 3). Empty URLs: the embedded
    # feature store, and events and exposures are validated but not streamed.
    redis_url: str = ""
    nats_url: str = ""
    # The feature stage's Redis budget: a read slower than this serves STALE_FEATURES.
    redis_timeout_ms: float = 5.0
    # After a Redis failure, serve from the local cache for this long before trying again.
    redis_retry_ms: float = 250.0
    # The local stale-while-revalidate cache: users kept, and how old an entry may be served.
    feature_cache_size: int = 100_000
    feature_cache_max_age_s: float = 3600.0
    # Accepted events and exposures wait here (append-only, fsync per batch) while NATS is down.
    spool_dir: Path = Path("spool")
    nats_timeout_ms: float = 1000.0
    exposure_queue: int = 10_000
    # The feature updater: interactions kept per user, session lifetime, ack wait, batch size.
    # history_max bounds what online features see of a user: above a user's batch history
    # (MovieLens' longest is 2,698) their online features drift from the trainer's.
    history_max: int = 5000
    session_ttl_s: float = 1800.0
    updater_ack_wait_s: float = 10.0
    updater_batch: int = 256

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        flags: Mapping[str, str] | None = None,
    ) -> Settings:
        """Build the settings from flags (``overrides``, None values ignored), env, defaults. ``flags``: the
        command line's flag for a field, where it is not ``--<field-name>`` (errors name it)."""
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
                sources[f.name] = (flags or {}).get(f.name, f"--{f.name.replace('_', '-')}")
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
            "processes",
            "default_pool_size",
            "max_pool_size",
            "max_num_results",
            "max_id_len",
            "max_events",
            "ivf_nprobe",
        ):
            need(getattr(self, name) >= 1, name, "must be at least 1")
        for name in (
            "max_exclude_ids",
            "max_per_genre",
            "session_k",
            "keep_versions",
            "keep_published",
            "warm_up_queries",
        ):
            need(getattr(self, name) >= 0, name, "must not be negative")
        need(self.budget_ms > 0, "budget_ms", "must be positive")
        need(self.grace_s >= 0, "grace_s", "must not be negative")
        for name in ("redis_timeout_ms", "redis_retry_ms", "feature_cache_max_age_s", "nats_timeout_ms"):
            need(getattr(self, name) > 0, name, "must be positive")
        for name in ("session_ttl_s", "updater_ack_wait_s"):
            need(getattr(self, name) >= 1, name, "must be at least 1 second")
        for name in ("feature_cache_size", "exposure_queue", "history_max", "updater_batch"):
            need(getattr(self, name) >= 1, name, "must be at least 1")
        for name in ("redis_url", "nats_url"):
            url = getattr(self, name)
            scheme = "redis" if name == "redis_url" else "nats"
            need(
                not url or url.split("://", 1)[0] in (scheme, scheme + "s", "unix"), name, f"must be a {scheme}:// URL"
            )
        need(0 <= self.metrics_port <= 65535, "metrics_port", "must be in [0, 65535]")
        need(self.drill_ranker_delay_ms >= 0, "drill_ranker_delay_ms", "must not be negative")
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
    kind = (
        {"Path": Path, "str": str, "int": int, "float": float, "bool": bool}.get(kind, kind)
        if isinstance(kind, str)
        else kind
    )
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
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"{name}: not a boolean (true/false): {raw!r}")
    raise SettingsError(f"{name}: unsupported setting type {kind!r}")
