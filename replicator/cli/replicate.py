"""``edgerank replicate --region R --dir D``: keep D in step with the region's promotion state."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from replicator.cli import common
from replicator.errors import ReplicatorError
from replicator.replicate import Replicator, ReplicatorConfig

NICE = 10


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("replicate", help="follow a region's promotions: fetch, verify, publish locally")
    common.add_flags(parser, "nats_url", "hub_domain", "region", "trusted_key", "keep_versions", "log_level")
    parser.add_argument("--dir", type=Path, required=True, help="the region's bundle directory (the node's)")
    parser.add_argument("--progress", action="store_true", help="show download progress bars")
    parser.add_argument("--no-prefetch", action="store_true", help="fetch a version only once a promotion names it")
    parser.add_argument(
        "--nice",
        type=int,
        default=NICE,
        help="CPU niceness to run at (default %(default)s): downloads and hashing yield to the node's requests",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    s = common.settings(args)
    if not 0 <= args.nice <= 19:
        raise ReplicatorError(f"--nice must be in [0, 19], got {args.nice}")
    os.nice(args.nice)  # the replicator is background work beside a latency-bound node on the same cores
    from node import logs

    logs.configure(s.log_level)
    if not s.trusted_key:
        raise ReplicatorError("--trusted-key (or EDGERANK_TRUSTED_KEY) is required: regions only serve signed bundles")
    config = ReplicatorConfig(
        nats_url=common.nats_url(s),
        region=s.region,
        directory=args.dir,
        trusted_key=Path(s.trusted_key),
        hub_domain=s.hub_domain,
        keep=s.keep_versions,
        progress=args.progress,
        prefetch=not args.no_prefetch,
    )

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Replicator(config).run(stop)

    asyncio.run(go())
    return 0
