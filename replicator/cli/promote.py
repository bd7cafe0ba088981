"""``edgerank promote|rollback|canary|shadow``: per-region promotion writes (CAS on the hub's KV).

``rollback --local`` is for a region cut off from the hub: connect to the
region's leaf (``--nats-url``); the rollback is computed from the leaf's mirror
of the hub's state and written as a local override, which holds until the hub
writes something newer for the region.
"""

from __future__ import annotations

import argparse
import functools
from typing import Any

from replicator import assignment as assign
from replicator import names, promotions
from replicator.cli import common
from replicator.errors import PromotionError


def register(subparsers: Any) -> None:
    for name, help_text in (
        ("promote", "make VERSION the region's champion"),
        ("rollback", "make the region's previous champion its champion again"),
        ("canary", "send PERCENT of the region's users to VERSION"),
        ("shadow", "score a sample of the region's traffic with VERSION, off the critical path"),
    ):
        parser = subparsers.add_parser(name, help=help_text)
        common.add_flags(parser, "nats_url", "hub_domain", "region")
        if name != "rollback":
            parser.add_argument("version", metavar="VERSION", nargs="?" if name == "shadow" else None)
        if name == "canary":
            parser.add_argument("--percent", type=float, required=True, help="0-100; 0 ends the canary")
        if name == "shadow":
            parser.add_argument("--off", action="store_true", help="stop shadow scoring")
        if name == "rollback":
            parser.add_argument("--local", action="store_true", help="write a local override on the region's leaf")
        parser.set_defaults(func=functools.partial(run, name))


def operation(command: str, args: argparse.Namespace) -> Any:
    if command == "promote":
        return functools.partial(assign.promote, version=args.version)
    if command == "rollback":
        return assign.rollback
    if command == "canary":
        return functools.partial(assign.canary, version=args.version, percent=args.percent)
    if args.off == bool(args.version):
        raise PromotionError("shadow: give VERSION or --off")
    return functools.partial(assign.shadow, version=None if args.off else args.version)


def run(command: str, args: argparse.Namespace) -> int:
    s = common.settings(args)
    op = operation(command, args)
    region = assign.check_region(s.region)

    async def go() -> assign.Assignment:
        nc, js = await common.hub(s)
        try:
            if getattr(args, "local", False):
                return await promotions.local_override(nc.jetstream(timeout=5.0), region, op)
            if getattr(args, "version", None):
                await promotions.require_published(js, args.version)
            return await promotions.update(js, names.PROMOTIONS_BUCKET, region, op, domain=s.hub_domain or None)
        finally:
            await nc.close()

    a = common.run(go)
    where = "locally (override)" if getattr(args, "local", False) else "on the hub"
    print(
        f"edgerank: {region} {where}: champion {a.champion}, challenger {a.challenger or '-'} ({a.percent:g}%), "
        f"shadow {a.shadow or '-'}, previous {', '.join(a.previous) or '-'} (generation {a.generation})"
    )
    return 0
