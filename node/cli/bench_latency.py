"""``edgerank bench latency``: open-loop load against a node, the latency contract's figures."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from node.errors import EdgerankError

FAULT_NAMES = ("redis-down", "redis-slow", "ranker-slow", "index-down")


def register(which: Any) -> None:
    p = which.add_parser(
        "latency",
        help="open-loop Poisson load on Rank: max sustainable rate, then latency at 1 in flight, 50%% and 80%% of it",
    )
    p.add_argument(
        "--bundle-dir",
        type=Path,
        required=True,
        help="bundle (root or directory) to serve, or, with --target, a copy of what the target serves (user ids)",
    )
    p.add_argument("--target", default=None, help="an external node HOST:PORT (default: start one here)")
    p.add_argument("--processes", type=int, default=2, help="server processes of the node started here (default 2)")
    p.add_argument("--server-workers", type=int, default=None, help="threads per server process for blocking calls")
    p.add_argument("--workers", type=int, default=1, help="load generator processes (default 1)")
    p.add_argument("--connections", type=int, default=16, help="connections per load generator process (default 16)")
    p.add_argument("--candidates", type=int, default=500, help="candidate_pool_size per request (default 500)")
    p.add_argument("-n", "--num-results", type=int, default=20, help="num_results per request (default 20)")
    p.add_argument("--unknown-share", type=float, default=0.05, help="share of unknown users (default 0.05)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of each reported run (default 10)")
    p.add_argument("--step-seconds", type=float, default=5.0, help="seconds of each search step (default 5)")
    p.add_argument("--start-rate", type=float, default=200.0, help="first rate of the search, /s (default 200)")
    p.add_argument("--max-rate", type=float, default=20000.0, help="highest rate the search tries (default 20000)")
    p.add_argument("--bisect-steps", type=int, default=4, help="bisection steps after the ramp (default 4)")
    p.add_argument("--budget-ms", type=float, default=50.0, help="P99 a passing rate must keep (default 50)")
    p.add_argument("--retries", type=int, default=1, help="tries more before a failing rate counts (default 1)")
    p.add_argument(
        "--max-degraded",
        type=float,
        default=0.01,
        help="share of warm users' requests a passing rate may serve below FULL (default 0.01)",
    )
    p.add_argument("--rate", type=float, default=None, help="run once at this rate instead of searching")
    p.add_argument("--fault", choices=FAULT_NAMES, default=None, help="inject a fault while the load runs")
    p.add_argument("--ranker-delay-ms", type=float, default=80.0, help="ranker-slow: added ms (default 80)")
    p.add_argument("--redis-delay-ms", type=float, default=20.0, help="redis-slow: added ms per round trip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    positive = (
        ("--processes", args.processes),
        ("--workers", args.workers),
        ("--connections", args.connections),
        ("--candidates", args.candidates),
        ("--num-results", args.num_results),
        ("--duration", args.duration),
        ("--step-seconds", args.step_seconds),
        ("--start-rate", args.start_rate),
        ("--max-rate", args.max_rate),
        ("--budget-ms", args.budget_ms),
    )
    for flag, value in positive:
        if not value > 0:
            raise EdgerankError(f"{flag} must be positive, got {value}")
    if args.server_workers is not None and args.server_workers < 1:
        raise EdgerankError(f"--server-workers must be at least 1, got {args.server_workers}")
    if args.rate is not None and not args.rate > 0:
        raise EdgerankError(f"--rate must be positive, got {args.rate}")
    if args.retries < 0:
        raise EdgerankError(f"--retries must not be negative, got {args.retries}")
    if args.bisect_steps < 0:
        raise EdgerankError(f"--bisect-steps must not be negative, got {args.bisect_steps}")
    if not 0.0 <= args.max_degraded <= 1.0:
        raise EdgerankError(f"--max-degraded must be in [0, 1], got {args.max_degraded}")
    if not 0.0 <= args.unknown_share <= 1.0:
        raise EdgerankError(f"--unknown-share must be in [0, 1], got {args.unknown_share}")
    if args.num_results > args.candidates:
        raise EdgerankError(f"--num-results must not exceed --candidates, got {args.num_results} > {args.candidates}")
    if args.start_rate > args.max_rate:
        raise EdgerankError(f"--start-rate must not exceed --max-rate, got {args.start_rate} > {args.max_rate}")
    if args.fault is not None and args.target is not None:
        raise EdgerankError("--fault needs a node started here (it configures the node): drop --target")
    if not args.bundle_dir.exists():
        raise EdgerankError(f"--bundle-dir {args.bundle_dir} does not exist")


def run(args: argparse.Namespace) -> int:
    _check(args)
    from node.loadgen.latency import LatencyConfig, dumps, run_latency
    from node.loadgen.report import bars, table
    from node.loadgen.requests import RequestMix
    from node.loadgen.search import SearchConfig

    config = LatencyConfig(
        bundle_dir=args.bundle_dir,
        target=args.target,
        processes=args.processes,
        server_workers=args.server_workers,
        workers=args.workers,
        connections=args.connections,
        mix=RequestMix(candidates=args.candidates, num_results=args.num_results, unknown_share=args.unknown_share),
        duration_s=args.duration,
        search=SearchConfig(
            budget_ms=args.budget_ms,
            start_rps=args.start_rate,
            max_rps=args.max_rate,
            step_s=args.step_seconds,
            bisect_steps=args.bisect_steps,
            retries=args.retries,
            max_degraded=args.max_degraded,
        ),
        rate=args.rate,
        fault=args.fault,
        ranker_delay_ms=args.ranker_delay_ms,
        redis_delay_ms=args.redis_delay_ms,
        seed=args.seed,
    )

    def on_step(rate: float, result: Any) -> None:
        print(
            f"edgerank: {rate:8.0f}/s -> p99 {result.histogram.percentile_ms(99):.2f} ms, "
            f"{sum(result.errors.values())} errors",
            file=sys.stderr,
            flush=True,
        )

    result, histograms = run_latency(config, on_step)
    result["command"] = "edgerank " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if args.json:
        print(dumps(result))
        return 0
    print(table(result))
    for key in ("half_max", "fault_run", "fixed_rate"):
        if key in histograms:
            print()
            print(bars(histograms[key], key))
    return 0
