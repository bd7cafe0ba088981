"""``edgerank prune``: delete the hub's published versions that no region uses (see :mod:`replicator.retention`)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from replicator import retention
from replicator.cli import common
from replicator.errors import ReplicatorError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("prune", help="delete published versions no region uses from the hub")
    common.add_flags(parser, "nats_url", "hub_domain", "keep_published", "log_level")
    parser.add_argument(
        "--incomplete-after",
        type=float,
        default=retention.INCOMPLETE_AFTER_S,
        metavar="SECONDS",
        help="an incomplete upload older than this is a failed publish, and goes (default %(default).0f)",
    )
    parser.add_argument("--dry-run", action="store_true", help="say what would go, delete nothing")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    s = common.settings(args)
    if not args.incomplete_after >= 0:
        raise ReplicatorError(f"--incomplete-after: must not be negative, got {args.incomplete_after}")
    from node import logs

    logs.configure(s.log_level)

    async def go() -> list[retention.Decision]:
        nc, js = await common.hub(s)
        try:
            return await retention.prune(js, s.keep_published, args.dry_run, args.incomplete_after)
        finally:
            await nc.close()

    decisions = common.run(go)
    gone = [d for d in decisions if not d.keep]
    freed = sum(d.bytes for d in gone)
    if args.json:
        common.print_json(
            {
                "dry_run": args.dry_run,
                "keep": s.keep_published,
                "versions": [dataclasses.asdict(d) for d in decisions],
                "deleted": [d.version for d in gone],
                "deleted_bytes": freed,
            }
        )
        return 0
    print(f"{'version':<32} {'MB':>9}  {'stored (UTC)':<19}  {'':<6}  why")
    for d in decisions:
        state = ("keep" if d.keep else "delete") + ("" if d.complete else "*")
        stored = d.written_at.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{d.version:<32} {d.bytes / 1e6:>9.1f}  {stored:<19}  {state:<6}  {d.why}")
    verb = "would delete" if args.dry_run else "deleted"
    kept = sum(d.bytes for d in decisions if d.keep)
    versions = [d for d in decisions if not d.orphan]
    stray = sum(1 for d in gone if d.orphan)
    print(
        f"edgerank: prune: {verb} {sum(1 for d in versions if not d.keep)} of {len(versions)} versions"
        + (f" and {stray} runs of chunks no object names" if stray else "")
        + f" ({freed / 1e6:.1f} MB); {kept / 1e6:.1f} MB kept (* an incomplete upload)"
    )
    return 0
