"""``edgerank features``: the feature updater for one region, until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from node import logs
from node.cli.options import add_node_flags, overrides
from node.settings import Settings, SettingsError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "features", help="consume the region's events into online features in Redis (the feature updater)"
    )
    add_node_flags(parser, only=("bundle_dir", "region", "log_level", "redis_url", "nats_url"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from node.updater import FeatureUpdater, consume

    settings = Settings.load(overrides(args))
    for name in ("redis_url", "nats_url"):
        if not getattr(settings, name):
            raise SettingsError(f"--{name.replace('_', '-')} (or EDGERANK_{name.upper()}) is required")
    logs.configure(settings.log_level)
    updater = FeatureUpdater(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"edgerank: updating features for region {settings.region} from {settings.nats_url}", flush=True)
        await consume(updater, stop)

    try:
        asyncio.run(main())
    finally:
        updater.close()
    return 0
