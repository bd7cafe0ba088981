"""``edgerank bench replication``: publish, promote in two regions, roll back, and time it all.

Starts a throwaway hub and two region leaves (:mod:`replicator.local_cluster`,
the topology of ``edge_deploy/nats``), and per region an ``edgerank replicate``
and an ``edgerank serve --follow`` process, as ``edgerank up`` does. Two
versions of the bundle (the same files under two version names, signed with a
throwaway key) are published; v1 is promoted and served first. Then, under an
open-loop Rank load (Poisson arrivals at ``rate`` in all) spread over both nodes, sent
by one ``edgerank-loadgen`` process per node (:mod:`replicator.bench_load`):

* ``publish_s``: gates + upload of v2 (``replicator.publish.publish``);
* ``live_in_all_regions_s``: from the promotion write (both regions, one
  after the other) until Rank answers from v2 in both regions, read from the
  load's own answers (each names its bundle version; one every
  ``answer_gap_ms_mean`` per node on average). By default the replicators prefetch v2 as soon as it is
  published (``prefetched_in_all_regions_s``, from the end of the publish), so
  this is the assignment and the node's load and warm-up; with ``prefetch=False``
  (``--no-prefetch``) it includes the download;
* ``rollback_s``: from the rollback write until both answer from the version
  before again, read the same way;
* ``swap_p999_ratio``: P99.9 of the load's requests sent during the swaps (from
  each promotion write until both regions serve the new version, at least
  ``min_swap_window_s``) over the P99.9 of the steady windows of ``steady_s``
  before each, same rate.

One swap at 100 requests/s is about 500 requests: its "P99.9" is the slowest
one or two of them, and the ratio of two such maxima swings by tens of percent
from run to run. So the bench swaps ``swaps`` times (v2, v3, ... each published,
prefetched and promoted in turn, each after its own steady window) and pools
the windows; ``per_swap`` keeps each swap's own figures, and
``live_in_all_regions_s`` is the slowest swap's. With ``versions`` below
``swaps``, only that many new versions are published and the later swaps
promote the versions again in turn (v1, v2, ... v1, ...): each of them then is
neither the node's current nor its previous (kept loaded) version, so each swap
is a whole load, verification and warm-up as for a new version, without a
publish and download of 1.3 GB between them; that makes a run of 20 swaps
take minutes, not a quarter of an hour.

A P99.9 is set by the slowest 0.1% of a window, and a stall of the whole
machine of 50-100 ms (the hypervisor's, or memory reclaim) holds up every
request in flight. ``tail`` says, per pooled window, how many of the requests at
or above its P99.9 had such a stall in flight (``STALL_MS`` or more of stolen
CPU or of memory pressure over their span, or a send lag that long).

Per region, the replicator's and the node's JSON logs give the breakdown
(fetch and verify, assignment written, load and warm-up).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.local_servers import NATS_GOMEMLIMIT, free_port, proc_peak_rss_mb
from node.pressure import PressureLog
from node.settings import Settings
from replicator import assignment as assign
from replicator import gates, names, promotions, signing
from replicator.bench_load import RegionLoad, Sample, first_served, ratio_interval, summary
from replicator.errors import ReplicatorError
from replicator.local_cluster import REGIONS, Cluster, start_cluster, url
from replicator.nats_io import connect
from replicator.processes import Children, child_env, wait_port
from replicator.publish import publish
from trainer import bundle as bundle_format
from trainer.bundle import MANIFEST, write_atomic

log = logging.getLogger(__name__)

PROBE_S = 0.01  # how often the bench reads the nodes' logs while it waits for a swap
STALL_MS = 10.0  # a machine stall in a request's span: this much stolen CPU or memory pressure, or send lag
# A new version's first seconds on each node, whose mean pipeline time is set against the steady window's.
NEW_VERSION_S = 4.0
# A P99.9 of 3 swaps' windows (about 1,500 requests at 100/s) is set by its one or two slowest, and one stall
# of the machine decides the ratio; 20 swaps (about 10,000) pool enough for it to say what a swap costs
# (BENCHMARKS.md, replication, session (15)). The swaps after the first 3 promote those versions again.
SWAPS = 20
VERSIONS = 3


@dataclass(frozen=True)
class ReplicationBench:
    bundle: Path  # a bundle directory or a root with LATEST
    label: str
    rate: float = 100.0  # Rank requests per second, over both nodes
    steady_s: float = 10.0
    min_swap_window_s: float = 5.0
    swaps: int = SWAPS  # promotions one after another; their windows are pooled
    # New versions published (None: VERSIONS, at most one per swap); fewer than swaps: the swaps cycle through them.
    versions: int | None = None
    timeout_s: float = 600.0
    prefetch: bool = True  # the replicators fetch v2 when it is published, before its promotion
    nats_niceness: int = 0  # CPU niceness of the hub and the leaves
    keep_published: int = Settings.keep_published  # each publish prunes the hub as `edgerank publish` does
    workdir: Path | None = None  # default: a temporary directory, removed afterwards


def _copy_as(src: Path, root: Path, version: str) -> Path:
    """``src``'s files under ``root/version`` (hard links where possible), unsigned, renamed."""
    dest = root / version
    dest.mkdir(parents=True)
    manifest = json.loads((src / MANIFEST).read_text())
    for name in manifest["files"]:
        try:
            os.link(src / name, dest / name)
        except OSError:
            shutil.copyfile(src / name, dest / name)
    manifest.pop("signature", None)
    manifest["version"] = version
    write_atomic(dest / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
    return dest


def _version(tag: str) -> str:
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-bench-{tag}"


def _wait_serving(children: Children, version: str, after_wall: float, timeout: float) -> float:
    """Until every node has logged that it serves ``version`` (after the wall time ``after_wall``); the
    monotonic time then. The bench's control flow only: reading the logs sends the nodes nothing (a
    Rank probe every 10 ms added load during the swaps alone). When each region really answered from
    it is read afterwards from the load's own answers (:func:`replicator.bench_load.first_served`)."""
    deadline = time.monotonic() + timeout
    pending = set(REGIONS)
    while pending:
        for region in sorted(pending):
            text = children.log(f"node-{region}")
            # Parsed only once the line can be there: this loop shares the cores with the swap it waits for.
            seen = f"serving bundle {version}" in text
            if seen and _first(_log_events(text), after_wall, "serving bundle", version) is not None:
                pending.discard(region)
        if not pending:
            break
        if time.monotonic() > deadline:
            raise ReplicatorError(f"{', '.join(sorted(pending))} did not serve {version} within {timeout:.0f} s")
        time.sleep(PROBE_S)
    return time.monotonic()


def _hub(cluster: Cluster, fn: Any) -> Any:
    async def go() -> Any:
        nc = await connect(url(cluster.hub), "bench", max_reconnect_attempts=2)
        try:
            return await fn(nc.jetstream(domain="hub", timeout=10.0))
        finally:
            await nc.close()

    return asyncio.run(go())


def _store_mb(cluster: Cluster) -> dict[str, float]:
    """The bundle stream's size on the hub and in each leaf's mirror (retention keeps them alike)."""

    async def one(server: Any) -> float:
        nc = await connect(url(server), "bench", max_reconnect_attempts=2)
        try:
            info = await nc.jetstream(timeout=10.0).stream_info(names.BUNDLES_STREAM)
            return round(int(info.state.bytes) / 1e6, 1)
        finally:
            await nc.close()

    return {name: asyncio.run(one(server)) for name, server in (("hub", cluster.hub), *cluster.leaves.items())}


def _write_all(cluster: Cluster, op: Any) -> None:
    async def go(js: Any) -> None:
        for region in REGIONS:
            await promotions.update(js, names.PROMOTIONS_BUCKET, region, op, domain="hub")

    _hub(cluster, go)


def _log_events(text: str, levels: tuple[str, ...] | None = None) -> list[tuple[float, str]]:
    """(time, message) of a JSON log's lines, in order; with ``levels``, of those levels only."""
    out = []
    for line in text.splitlines():
        try:
            doc = json.loads(line)
            ts = dt.datetime.strptime(doc["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC).timestamp()
        except (ValueError, KeyError, TypeError):
            continue  # not one of our JSON log lines (a progress bar, a library's print)
        if levels is None or doc.get("level") in levels:
            out.append((ts, str(doc.get("msg", ""))))
    return out


def _first(events: list[tuple[float, str]], after: float, *needles: str) -> float | None:
    for ts, msg in events:
        if ts >= after - 0.002 and all(n in msg for n in needles):
            return ts
    return None


def _breakdown(children: Children, version: str, written_at: float) -> dict[str, Any]:
    """Per region, seconds after the promotion write: fetched, assigned, loading started, loaded, serving."""
    out: dict[str, Any] = {}
    for region in REGIONS:
        rep, node = _log_events(children.log(f"replicate-{region}")), _log_events(children.log(f"node-{region}"))
        marks = {
            "fetched": _first(rep, written_at, "fetched and verified", version),
            "assigned": _first(rep, written_at, "assigned champion", version),
            "loading": _first(node, written_at, "loading bundle", version),
            "loaded": _first(node, written_at, "loaded bundle", version),
            "serving": _first(node, written_at, "serving bundle", version),
        }
        out[region] = {k: None if v is None else round(v - written_at, 3) for k, v in marks.items()}
        fetch = next((m for _, m in rep if "fetched and verified" in m and version in m), "")
        out[region]["fetch_log"] = fetch
        out[region]["load_log"] = next((m for ts, m in node if ts >= written_at and "loaded bundle" in m), "")
    return out


def _wait_installed(children: Children, regions: Path, version: str, timeout: float) -> float:
    """Until every region's directory holds ``version`` (installed by its replicator); the time then. On a
    timeout, the error names the regions without it and the last problem their replicators logged."""
    deadline = time.monotonic() + timeout
    while not all((regions / r / version / MANIFEST).is_file() for r in REGIONS):
        if time.monotonic() > deadline:
            missing = [r for r in REGIONS if not (regions / r / version / MANIFEST).is_file()]
            why = "; ".join(f"{r}: {_last_problem(children.log(f'replicate-{r}'))}" for r in missing)
            raise ReplicatorError(f"{version} was not prefetched within {timeout:.0f} s ({why})")
        time.sleep(0.05)
    return time.monotonic()


def _last_problem(log_text: str) -> str:
    """The last warning or error of a JSON log, else that it logged none."""
    problems = _log_events(log_text, levels=("warning", "error", "critical"))
    return problems[-1][1] if problems else "no warning or error logged"


def _users(bundle_dir: Path, n: int = 200) -> list[str]:
    import numpy as np

    ids = np.load(bundle_dir / "user_ids.npy", mmap_mode="r")
    step = max(1, len(ids) // n)
    return [str(u) for u in ids[::step][:n]]


@dataclass(frozen=True)
class _Swap:
    version: str
    publish_s: float | None  # None: a version published before, promoted again
    prefetched_s: float | None
    steady: tuple[float, float]  # monotonic window of the steady requests before it
    window: tuple[float, float]  # from the promotion write until both serve it (at least min_swap_window_s)
    breakdown: dict[str, Any]
    uploaded_files: int
    pruned: list[str]


def _swap(
    bench: ReplicationBench, cluster: Cluster, children: Children, work: Path, key: Any, v: Path, new: bool
) -> _Swap:
    """A steady window, then (``new``) publish ``v`` and let the regions prefetch it, promote it in both, wait
    for both."""
    steady_t0 = time.monotonic()
    time.sleep(bench.steady_s)
    steady_t1 = time.monotonic()
    config = gates.GateConfig()
    t = time.monotonic()
    publish_s = prefetched_s = None
    uploaded, pruned = 0, []
    if new:
        published = _hub(cluster, lambda js: publish(js, v, key, config, progress=False, keep=bench.keep_published))
        publish_s = time.monotonic() - t
        uploaded, pruned = published.uploaded_files, published.pruned
        if bench.prefetch:  # the regions download it now; the promotion waits for what is left of that
            prefetched_s = _wait_installed(children, work / "regions", v.name, bench.timeout_s) - (t + publish_s)
    time.sleep(1.0)  # publishing and prefetching are not part of either window
    written_wall, t0 = time.time(), time.monotonic()
    _write_all(cluster, lambda a: assign.promote(a, v.name))
    seen_at = _wait_serving(children, v.name, written_wall, bench.timeout_s)
    swap_t1 = max(seen_at, t0 + bench.min_swap_window_s)
    while time.monotonic() < swap_t1 + 1.0:
        time.sleep(0.05)
    return _Swap(
        v.name,
        publish_s,
        prefetched_s,
        (steady_t0, steady_t1),
        (t0, swap_t1),
        _breakdown(children, v.name, written_wall),
        uploaded,
        pruned,
    )


def _slow(x: Sample, t0: float) -> dict[str, Any]:
    pipeline = None if math.isnan(x.pipeline_ms) else round(x.pipeline_ms, 2)
    return {"at_s": round(x.intended - t0, 3), "ms": round(x.latency_ms, 1), "pipeline_ms": pipeline,
            "send_lag_ms": round(x.lag_ms, 1), "version": x.version, "target": x.target}  # fmt: skip


def _tail(samples: list[Sample], pressure: PressureLog) -> dict[str, Any]:
    """The requests at or above the window's P99.9 (those that set it), and how many of them had a stall of
    the machine in flight: ``STALL_MS`` of stolen CPU or of memory pressure over their span (the pressure log
    widens it by up to one sample each side), or a send lag as long."""
    p999 = summary(samples)["p999_ms"]
    tail = [x for x in samples if p999 is not None and x.latency_ms >= p999]
    stalled = 0
    for x in tail:
        stall = pressure.stall_ms(x.intended, x.intended + x.latency_ms / 1e3) or {}
        if x.lag_ms >= STALL_MS or max(stall.get("steal", 0.0), stall.get("memory", 0.0)) >= STALL_MS:
            stalled += 1
    return {"requests": len(tail), "with_machine_stall": stalled}


def _pooled_stall_ms(pressure: PressureLog, windows: list[tuple[float, float]]) -> dict[str, float] | None:
    """:meth:`PressureLog.stall_ms` summed over ``windows``; None if any has no samples around it."""
    parts = [pressure.stall_ms(*w) for w in windows]
    whole = [p for p in parts if p is not None]
    if not whole or len(whole) < len(parts):
        return None
    return {k: round(sum(p[k] for p in whole), 1) for k in whole[0]}


def _send_lag_max_ms(samples: list[Sample]) -> float:
    """The generators' worst send lag in a window: how long the machine itself stalled them."""
    return round(max((x.lag_ms for x in samples), default=0.0), 1)


def _pipeline_mean(samples: list[Sample]) -> float | None:
    """The nodes' mean pipeline time (ms) over the answered requests of ``samples``."""
    times = [x.pipeline_ms for x in samples if x.ok and not math.isnan(x.pipeline_ms)]
    return round(sum(times) / len(times), 3) if times else None


def _first_on(load: RegionLoad, version: str, t0: float, t1: float) -> list[Sample]:
    """Each node's answers from ``version`` over its first ``NEW_VERSION_S`` of serving it (sent in [t0, t1))."""
    out: list[Sample] = []
    for target in load.targets:
        mine = [x for x in load.window(t0, t1) if x.target == target and x.ok and x.version == version]
        if mine:
            first = min(x.intended for x in mine)
            out += [x for x in mine if x.intended < first + NEW_VERSION_S]
    return out


def _ratio(swap: dict[str, Any], steady: dict[str, Any]) -> float | None:
    return round(swap["p999_ms"] / steady["p999_ms"], 2) if steady["p999_ms"] and swap["p999_ms"] else None


def _served_at(load: RegionLoad, version: str, t0: float, t1: float) -> dict[str, float]:
    """Per node, when it began to answer from ``version`` for good (after ``t0``, before ``t1``)."""
    at = {t: first_served(load.samples, t, version, t0, t1) for t in load.targets}
    late = sorted(t for t, x in at.items() if x is None)
    if late:
        raise ReplicatorError(f"{', '.join(late)} did not answer from {version} for good before the next change")
    return {t: x for t, x in at.items() if x is not None}


def _live_s(load: RegionLoad, version: str, t0: float, t1: float) -> float:
    """From ``t0`` until every node answered from ``version`` for good (before ``t1``)."""
    return max(_served_at(load, version, t0, t1).values()) - t0


def _phases(samples: list[Sample], served_at: dict[str, float]) -> tuple[list[Sample], list[Sample]]:
    """A swap window's requests sent before their node answered from the new version for good (its load and
    warm-up, answered by the old version), and those sent after."""
    before = [x for x in samples if x.intended < served_at[x.target]]
    return before, [x for x in samples if x.intended >= served_at[x.target]]


def _report(
    bench: ReplicationBench, load: RegionLoad, swaps: list[_Swap], rollback_t0: float, pressure: PressureLog
) -> dict[str, Any]:
    """Pooled steady and swap windows, and each swap's own figures."""
    steady_samples = [x for s in swaps for x in load.window(*s.steady)]
    swap_samples = [x for s in swaps for x in load.window(*s.window)]
    steady, swap = summary(steady_samples), summary(swap_samples)
    per_swap = []
    ends = [s.window[0] for s in swaps[1:]] + [rollback_t0]
    served = [_served_at(load, s.version, s.window[0], end) for s, end in zip(swaps, ends, strict=True)]
    live = [max(at.values()) - s.window[0] for s, at in zip(swaps, served, strict=True)]
    phases = [_phases(load.window(*s.window), at) for s, at in zip(swaps, served, strict=True)]
    loading, after = [x for p in phases for x in p[0]], [x for p in phases for x in p[1]]
    first_on = [_first_on(load, s.version, s.window[0], end) for s, end in zip(swaps, ends, strict=True)]
    for s, live_s, new in zip(swaps, live, first_on, strict=True):
        own_steady, own_swap = summary(load.window(*s.steady)), summary(load.window(*s.window))
        slowest = sorted(load.window(*s.window), key=lambda x: -x.latency_ms)[:8]
        steady_slowest = sorted(load.window(*s.steady), key=lambda x: -x.latency_ms)[:4]
        per_swap.append(
            {
                "version": s.version,
                "publish_s": None if s.publish_s is None else round(s.publish_s, 2),
                "uploaded_files": s.uploaded_files,
                "pruned": s.pruned,  # versions the publish deleted from the hub (retention)
                "prefetched_in_all_regions_s": None if s.prefetched_s is None else round(s.prefetched_s, 2),
                "live_in_all_regions_s": round(live_s, 2),
                "swap_window_s": round(s.window[1] - s.window[0], 2),
                "steady": own_steady,
                "swap": own_swap,
                "swap_p999_ratio": _ratio(own_swap, own_steady),
                # When the slowest requests of the swap were sent (seconds after the promotion write), their
                # latency and the node's pipeline time (the rest was spent in gRPC, queues or off the CPU).
                "swap_slowest": [_slow(x, s.window[0]) for x in slowest],
                # A window whose tail is a stall of the whole machine says little about the node's swap.
                "send_lag_max_ms": {
                    "steady": _send_lag_max_ms(load.window(*s.steady)),
                    "swap": _send_lag_max_ms(load.window(*s.window)),
                },
                # Tasks of the machine stalled on memory or waiting for a CPU (PSI; None without it).
                "pressure_stall_ms": {"steady": pressure.stall_ms(*s.steady), "swap": pressure.stall_ms(*s.window)},
                "steady_slowest": [_slow(x, s.steady[0]) for x in steady_slowest],
                "breakdown_s": s.breakdown,
                # A new version's first seconds against the steady window: cold caches show here, not in P99.9.
                "pipeline_ms_mean": {
                    "steady": _pipeline_mean(load.window(*s.steady)),
                    "first_on_new": _pipeline_mean(new),
                },
            }
        )
    return {
        "swaps": len(swaps),
        "new_versions": sum(1 for s in swaps if s.publish_s is not None),  # published (fewer than swaps: cycled)
        "publish_s": round(max(s.publish_s for s in swaps if s.publish_s is not None), 2),
        "prefetch": bench.prefetch,
        "nats_niceness": bench.nats_niceness,
        "keep_published": bench.keep_published,
        "live_in_all_regions_s": round(max(live), 2),
        "swap_p999_ratio": _ratio(swap, steady),
        # How far the ratio moves from resampling the same requests (bench_load.ratio_interval).
        "swap_p999_ratio_ci90": ratio_interval(swap_samples, steady_samples),
        # The swap windows split at each node's first answer from the new version for good: its load and
        # warm-up beside the old version, then the new version's first seconds (each against the steady P99.9).
        "swap_phases": {
            "until_served": summary(loading),
            "after_served": summary(after),
            "p999_ratio_until_served": _ratio(summary(loading), steady),
            "p999_ratio_after_served": _ratio(summary(after), steady),
        },
        "steady": steady,
        "swap": swap,
        "send_lag_max_ms": {"steady": _send_lag_max_ms(steady_samples), "swap": _send_lag_max_ms(swap_samples)},
        # The machine's stalls over each pooled window (stolen CPU, memory and CPU pressure, ms), and how many
        # of the requests that set each window's P99.9 had one in flight.
        "pressure_stall_ms": {
            "steady": _pooled_stall_ms(pressure, [s.steady for s in swaps]),
            "swap": _pooled_stall_ms(pressure, [s.window for s in swaps]),
        },
        "tail": {"steady": _tail(steady_samples, pressure), "swap": _tail(swap_samples, pressure)},
        "pipeline_ms_mean": {
            "steady": _pipeline_mean(steady_samples),
            "first_on_new": _pipeline_mean([x for new in first_on for x in new]),
            "first_on_new_s": NEW_VERSION_S,
        },
        "per_swap": per_swap,
    }


def run(bench: ReplicationBench) -> dict[str, Any]:
    if bench.swaps < 1:
        raise ReplicatorError(f"swaps must be at least 1, got {bench.swaps}")
    n_new = min(VERSIONS, bench.swaps) if bench.versions is None else bench.versions
    if not 1 <= n_new <= bench.swaps or (n_new < bench.swaps and n_new < 2):
        raise ReplicatorError(
            f"versions: from 1 to swaps ({bench.swaps}), and at least 2 when the swaps cycle through them (a node "
            f"keeps its previous version loaded: promoting it again would be no load), got {n_new}"
        )
    src = bundle_format.resolve(Path(bench.bundle))
    own_workdir = bench.workdir is None
    work = Path(tempfile.mkdtemp(prefix="edgerank-bench-repl-")) if bench.workdir is None else Path(bench.workdir)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    children = Children(work / "logs")
    cluster: Cluster | None = None
    load: RegionLoad | None = None
    pressure: PressureLog | None = None
    try:
        key_path, pub_path = signing.keygen(work / "keys" / "bench.key")
        key = signing.load_private(key_path)
        v1 = _copy_as(src, work / "src", _version("v1"))
        later = [_copy_as(src, work / "src", _version(f"v{i + 2}")) for i in range(n_new)]
        # Swap k promotes the (k+1)th of v1, v2, ...: the new versions in turn, then all of them again.
        cycle = [v1, *later]
        sequence = [cycle[(k + 1) % len(cycle)] for k in range(bench.swaps)]
        bundle_bytes = sum(int(m["size"]) for m in json.loads((src / MANIFEST).read_text())["files"].values())
        (work / "nats").mkdir()
        cluster = start_cluster(work / "nats", niceness=bench.nats_niceness)
        _hub(cluster, lambda js: publish(js, v1, key, gates.GateConfig(), progress=False, keep=bench.keep_published))
        _write_all(cluster, lambda a: assign.promote(a, v1.name))

        targets = {}
        for region in REGIONS:
            port = free_port()
            targets[region] = f"127.0.0.1:{port}"
            d = work / "regions" / region
            env = child_env(log_level="INFO")
            children.edgerank(
                f"replicate-{region}",
                ["replicate", "--region", region, "--dir", str(d), "--nats-url", url(cluster.leaves[region]),
                 "--trusted-key", str(pub_path), *([] if bench.prefetch else ["--no-prefetch"])],
                env,
            )  # fmt: skip
            children.edgerank(
                f"node-{region}",
                ["serve", "--follow", "--bundle-dir", str(d), "--region", region, "--host", "127.0.0.1",
                 "--port", str(port)],
                env,
            )  # fmt: skip
        for target in targets.values():
            wait_port(int(target.rsplit(":", 1)[1]), timeout=60, children=children)
        _wait_serving(children, v1.name, 0.0, bench.timeout_s)

        pressure = PressureLog().start()
        load = RegionLoad([targets[r] for r in REGIONS], _users(src), bench.rate).start()
        time.sleep(1.0)  # let the load settle (connections, first calls) before the first steady window
        swaps = [_swap(bench, cluster, children, work, key, v, k < n_new) for k, v in enumerate(sequence)]

        t1_wall, t1 = time.time(), time.monotonic()
        _write_all(cluster, assign.rollback)
        back_to = sequence[-2].name if len(sequence) > 1 else v1.name
        rolled_seen = _wait_serving(children, back_to, t1_wall, bench.timeout_s)
        time.sleep(0.5)  # answers after the rollback, to read when each region answered from back_to
        end = time.monotonic()
        versions = {v.name for v in (v1, *later)}
        load.stop(versions)
        pressure.stop()
        rollback_s = _live_s(load, back_to, t1, end)
        store_mb = _store_mb(cluster)
        servers = {"nats-hub": cluster.hub, **{f"nats-{r}": leaf for r, leaf in cluster.leaves.items()}}
        peak_rss = {name: server.peak_rss_mb() for name, server in servers.items()}
        peak_rss.update({name: proc_peak_rss_mb(proc.pid) for name, proc in children.procs.items()})
        return {
            "label": bench.label,
            "bundle_mb": round(bundle_bytes / 1e6, 1),
            "items": int(json.loads((src / MANIFEST).read_text()).get("counts", {}).get("items", 0)),
            **_report(bench, load, swaps, t1, pressure),
            "rollback_s": round(rollback_s, 3),
            # What the hub's bundle store and each region's mirror of it hold at the end (pruned by retention).
            "bundle_store_mb": store_mb,
            # Each process's peak resident set (VmHWM, MB: a node's includes its mapped bundles), and the NATS
            # servers' Go memory limit (node.local_servers.NATS_GOMEMLIMIT unless GOMEMLIMIT is set).
            "peak_rss_mb": peak_rss,
            "nats_gomemlimit": os.environ.get("GOMEMLIMIT", NATS_GOMEMLIMIT),
            "rollback_window": summary(load.window(t1, max(rolled_seen, t1 + rollback_s) + 0.5)),
            # Every answer came from one of the bench's versions (a stray version would be a routing bug).
            "answers_from_other_versions": sum(1 for x in load.samples if x.ok and x.version not in versions),
            "rate_rps": bench.rate,
            # How often each node's answers tell the version: the resolution of the live and rollback times.
            "answer_gap_ms_mean": round(1e3 * len(load.targets) / bench.rate, 1),
            "load_send_lag_p99_ms": load.send_lag_p99_ms(),
            "load_cpu_s": round(load.cpu_s, 2),
            "workdir": str(work) if not own_workdir else None,
        }
    finally:
        if pressure is not None:
            pressure.stop()
        if load is not None:
            load.close()
        children.stop()
        if cluster is not None:
            cluster.stop()
        if own_workdir:
            shutil.rmtree(work, ignore_errors=True)
