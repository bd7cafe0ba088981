"""``edgerank synth``: a catalog-scale synthetic bundle (Zipf popularity, clustered embeddings)."""

from __future__ import annotations

import argparse
import json
import logging
import resource
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from node.errors import EdgerankError

MIN_ITEMS = 1000
MIN_USERS = 200


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "synth",
        help="generate a synthetic catalog (default 1M items, 1M users) and write a servable bundle",
    )
    p.add_argument("--items", type=int, default=1_000_000, help="catalog size (default 1000000)")
    p.add_argument("--users", type=int, default=1_000_000, help="users with batch features (default 1000000)")
    p.add_argument("--out", type=Path, default=Path("bundles-synth"), help="bundle root (default ./bundles-synth)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ranker-users", type=int, default=2000, help="users whose rows fit the ranker (default 2000)")
    p.add_argument(
        "--target-recall", type=float, default=0.95, help="recall@100 the index's expansion must reach (default 0.95)"
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON document")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    for flag, value, low in (
        ("--items", args.items, MIN_ITEMS),
        ("--users", args.users, MIN_USERS),
        ("--ranker-users", args.ranker_users, 50),
    ):
        if value < low:
            raise EdgerankError(f"{flag} must be at least {low}, got {value}")
    if args.ranker_users > args.users:
        raise EdgerankError(f"--ranker-users must not exceed --users, got {args.ranker_users} > {args.users}")
    if not 0.0 < args.target_recall <= 1.0:
        raise EdgerankError(f"--target-recall must be in (0, 1], got {args.target_recall}")


def run(args: argparse.Namespace) -> int:
    _check(args)
    # Heavy imports here, so that other commands start fast.
    from trainer.synth_bundle import SynthBundleConfig, build_synth_bundle
    from trainer.synth_large import LargeSynthConfig

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    data = LargeSynthConfig(items=args.items, users=args.users, seed=args.seed)
    config = replace(
        SynthBundleConfig(data=data),
        ranker_users=args.ranker_users,
        target_recall=args.target_recall,
        recall_queries=min(200, args.users),
    )
    t0 = time.perf_counter()
    built = build_synth_bundle(args.out, config)
    seconds = round(time.perf_counter() - t0, 1)
    peak_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    m = built.manifest
    result = {
        "version": m["version"],
        "path": str(built.bundle_dir),
        "items": m["counts"]["items"],
        "users": m["counts"]["users"],
        "interactions": m["source"]["interactions"],
        "sampled": m["training"]["sampled"],
        "gate": m["gates"]["student"],
        "index": m["metrics"]["index"],
        "seconds": seconds,
        "phase_seconds": built.seconds,
        "peak_rss_mib": peak_mib,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    idx, gate = result["index"], result["gate"]
    print(f"bundle {m['version']} written to {built.bundle_dir}")
    print(f"  {result['items']} items, {result['users']} users, {result['interactions']} interactions")
    print(
        f"  ranker fit on {result['sampled']['ranker_users']} sampled users ({result['sampled']['ranker_rows']} rows); "
        f"student NDCG@10 {gate['student']:.4f} vs teacher {gate['teacher']:.4f}: passed"
    )
    print(
        f"  index: expansion_search {idx['expansion_search']}, recall@100 {idx['recall@100']:.3f} "
        f"on {idx['queries']} queries (target {idx['target_recall']})"
    )
    phases = ", ".join(f"{k} {v:.0f}s" for k, v in built.seconds.items())
    print(f"  {seconds:.0f} s ({phases}), peak RSS {peak_mib} MiB")
    return 0
