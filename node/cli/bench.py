"""``edgerank bench``: benchmarks that print their figures and conditions."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from node.cli import bench_latency


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench", help="run a benchmark and print its figures")
    which = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    hot = which.add_parser("hotpath", help="Rust blend + assembly + re-rank vs NumPy, one run")
    hot.add_argument("--items", type=int, default=100_000, help="catalog size (default 100000)")
    hot.add_argument("--candidates", type=int, default=500, help="pool size (default 500)")
    hot.add_argument("--repeat", type=int, default=1000, help="timed runs per side, interleaved (default 1000)")
    hot.add_argument("--json", action="store_true", help="print one JSON document")
    hot.set_defaults(func=run_hotpath)
    bench_latency.register(which)
    fresh = which.add_parser("freshness", help="Events.Log to the first Rank that reflects the event, on loopback")
    fresh.add_argument("--events", type=int, default=200, help="events timed (default 200)")
    fresh.add_argument("--bundle-dir", type=Path, default=None, help="bundle root or directory [EDGERANK_BUNDLE_DIR]")
    fresh.add_argument("--redis-url", default="", help="use this Redis (default: start a throwaway one)")
    fresh.add_argument("--nats-url", default="", help="use this NATS (default: start a throwaway one)")
    fresh.add_argument("--json", action="store_true", help="print one JSON document")
    fresh.set_defaults(func=run_freshness)
    from replicator.cli import bench as replication

    replication.register(which)


def run_hotpath(args: argparse.Namespace) -> int:
    from node.bench_hotpath import HotpathBench, run

    for flag, value, low in (
        ("--items", args.items, 1000),
        ("--candidates", args.candidates, 10),
        ("--repeat", args.repeat, 10),
    ):
        if value < low:
            raise ValueError(f"{flag} must be at least {low}, got {value}")
    if args.candidates > args.items // 4:
        raise ValueError(f"--candidates must be at most a quarter of --items, got {args.candidates}")
    result = run(HotpathBench(items=args.items, candidates=args.candidates, repeat=args.repeat))
    result["command"] = "edgerank " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if args.json:
        print(json.dumps(result))
        return 0
    machine = result["machine"]
    print(
        f"hot path, {result['candidates']} candidates over {result['catalog_items']} items, "
        f"{result['repeat']} interleaved runs each"
    )
    print(f"  {'side':6} {'median µs':>10} {'min µs':>10} {'p99 µs':>10}   stages (median µs)")
    for side in ("rust", "numpy"):
        stages = " ".join(f"{k} {v}" for k, v in result["stages_median_us"][side].items())
        print(
            f"  {side:6} {result[side + '_us']:10.1f} {result[side + '_min_us']:10.1f} "
            f"{result[side + '_p99_us']:10.1f}   {stages}"
        )
    print(f"  thread CPU time (median µs): rust {result['rust_cpu_us']}, numpy {result['numpy_cpu_us']}")
    print(
        f"  speedup {result['speedup']}x (wall medians), {result['speedup_min']}x (wall minima), "
        f"{result['speedup_cpu']}x (CPU medians), same run"
    )
    tables = result["assemble_tables"]
    print(
        f"  assemble alone, a new pool per run (median / min / CPU µs): in-memory table {tables['in_memory_us']} / "
        f"{tables['in_memory_min_us']} / {tables['in_memory_cpu_us']}, mapped item rows {tables['mapped_us']} / "
        f"{tables['mapped_min_us']} / {tables['mapped_cpu_us']}"
    )
    print(
        f"  machine: {machine['cpu']}, {machine['cpus']} CPUs, load average "
        f"{machine['load_avg_start']} at start, {machine['load_avg_end']} at end"
    )
    print(f"  command: {result['command']}")
    return 0


def run_freshness(args: argparse.Namespace) -> int:
    from node.bench_freshness import FreshnessBench, run
    from node.settings import Settings, SettingsError

    if args.events < 10:
        raise SettingsError(f"--events must be at least 10, got {args.events}")
    bundle_dir = args.bundle_dir or Settings.load(env=None).bundle_dir
    overrides = {"redis_url": args.redis_url or None, "nats_url": args.nats_url or None}
    Settings.load(overrides, env={})  # checks the URLs; names the flag on error
    result = run(FreshnessBench(bundle_dir, args.events, args.redis_url, args.nats_url))
    result["command"] = "edgerank " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"freshness over {result['events']} events ({result['servers']} servers)")
    print(f"  p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms")
    return 0
