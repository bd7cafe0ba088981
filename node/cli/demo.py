"""``edgerank demo``: train a bundle if there is none, serve it in-process, rank for three users."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from node import logs
from node.bundle import LoadedBundle
from node.cli.options import add_node_flags, overrides
from node.cli.query import rank
from node.cli.render import load_titles, print_response
from node.gen.edgerank.v1 import ranker_pb2
from node.server import Node
from node.settings import Settings
from trainer import bundle as bundle_format

UNKNOWN_USER = "new-user-1"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train if needed, serve in-process, rank for a warm, a cold and a new user",
    )
    add_node_flags(parser, only=("bundle_dir", "epsilon", "max_per_genre", "log_level"))
    parser.add_argument("-n", "--num-results", type=int, default=10, help="items per list")
    parser.set_defaults(func=run)


def ensure_bundle(root: Path) -> Path:
    """The bundle to serve; trains one from MovieLens when ``root`` has none."""
    if (root / bundle_format.MANIFEST).is_file() or bundle_format.latest_version(root) is not None:
        return bundle_format.resolve(root)
    print(
        f"edgerank: no bundle in {root}; training one from MovieLens (a few minutes)",
        file=sys.stderr,
    )
    from trainer.pipeline import train_movielens  # heavy imports only when training

    return train_movielens(root)


def demo_users(bundle: LoadedBundle) -> list[tuple[str, str]]:
    """(label, user id) for a warm, a cold and an unknown user, chosen deterministically."""
    known = set(bundle.user_index)
    warm = str(bundle.golden[0]["user_id"]) if bundle.golden else str(bundle.user_ids[0])
    cold_listed = [str(u) for u in bundle.manifest.get("cold_users") or [] if str(u) not in known]
    unlisted = (str(i) for i in range(1, len(known) + 2) if str(i) not in known)
    cold = cold_listed[0] if cold_listed else next(unlisted)
    return [
        ("warm user", warm),
        ("cold user (held out of training)", cold),
        ("unknown user", UNKNOWN_USER),
    ]


def run(args: argparse.Namespace) -> int:
    settings = Settings.load({**overrides(args), "port": 0, "host": "127.0.0.1"})
    logs.configure(settings.log_level if args.log_level else "WARNING", json_lines=False)
    bundle_dir = ensure_bundle(Path(settings.bundle_dir))
    node = Node(settings.replace(bundle_dir=bundle_dir)).start()
    try:
        bundle = node.holder.snapshot()
        titles = load_titles(bundle_dir)
        print(f"edgerank demo: bundle {bundle.version} on {node.target}\n")
        for label, user in demo_users(bundle):
            request = ranker_pb2.RankRequest(
                user_id=user,
                surface="home",
                num_results=args.num_results,
                request_id=f"demo-{user}",
                context=ranker_pb2.Context(timestamp_ms=int(time.time() * 1000)),
            )
            print(f"# {label}")
            print_response(user, rank(node.target, request), titles, sys.stdout)
            print()
    finally:
        node.stop(grace=1.0)
    return 0
