"""``edgerank publish BUNDLE_DIR``: gate, sign, upload and announce a bundle."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from replicator import gates, signing
from replicator.cli import common
from replicator.publish import publish
from trainer import bundle as bundle_format


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("publish", help="gate, sign and publish a bundle to the hub")
    parser.add_argument("bundle_dir", type=Path, metavar="BUNDLE_DIR", help="a bundle directory or a root with LATEST")
    common.add_flags(parser, "nats_url", "hub_domain", "signing_key", "keep_published", "log_level")
    d = gates.GateConfig()
    parser.add_argument("--ndcg-tolerance", type=float, default=d.ndcg_tolerance, help="relative drop allowed")
    parser.add_argument("--max-rank-p99-ms", type=float, default=d.max_rank_p99_ms, help="latency gate, ms")
    parser.add_argument("--allow-new-space", action="store_true", help="accept a new embedding space")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    s = common.settings(args)
    bundle_dir = bundle_format.resolve(args.bundle_dir)  # a bad path fails before any connection
    from node import logs

    logs.configure(s.log_level)
    key = signing.load_private(Path(s.signing_key)) if s.signing_key else None
    config = gates.GateConfig(
        ndcg_tolerance=args.ndcg_tolerance, max_rank_p99_ms=args.max_rank_p99_ms, allow_new_space=args.allow_new_space
    )

    async def go() -> Any:
        nc, js = await common.hub(s)
        try:
            return await publish(js, bundle_dir, key, config, progress=not args.json, keep=s.keep_published)
        finally:
            await nc.close()

    result = common.run(go)
    if args.json:
        common.print_json(dataclasses.asdict(result))
    else:
        print(
            f"edgerank: published {result.version} ({result.bytes / 1e6:.1f} MB, {result.uploaded_files} files "
            f"uploaded, {result.skipped_files} already there) signed by {result.key_id} in {result.seconds:.1f} s"
        )
        if result.pruned:
            print(
                f"edgerank: pruned from the hub what no region uses ({result.pruned_bytes / 1e6:.1f} MB): "
                + ", ".join(result.pruned)
            )
    return 0
