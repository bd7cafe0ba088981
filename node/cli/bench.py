"""``edgerank bench``: benchmarks that print their figures and conditions."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench", help="run a benchmark and print its figures")
    which = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    hot = which.add_parser("hotpath", help="Rust blend + assembly + re-rank vs NumPy, one run")
    hot.add_argument("--items", type=int, default=100_000, help="catalog size (default 100000)")
    hot.add_argument("--candidates", type=int, default=500, help="pool size (default 500)")
    hot.add_argument("--repeat", type=int, default=300, help="timed runs per side (default 300)")
    hot.add_argument("--json", action="store_true", help="print one JSON document")
    hot.set_defaults(func=run_hotpath)


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
    print(
        f"hot path, {result['candidates']} candidates over {result['catalog_items']} items, "
        f"{result['repeat']} runs each"
    )
    print(f"  {'side':6} {'median µs':>10} {'p99 µs':>10}")
    print(f"  {'rust':6} {result['rust_us']:10.1f} {result['rust_p99_us']:10.1f}")
    print(f"  {'numpy':6} {result['numpy_us']:10.1f} {result['numpy_p99_us']:10.1f}")
    print(f"  speedup {result['speedup']}x")
    return 0
