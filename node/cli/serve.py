"""``edgerank serve``: run a node until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
from typing import Any

from node import logs
from node.cli.options import add_node_flags, overrides
from node.server import Node
from node.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="serve the bundle over gRPC until SIGTERM")
    add_node_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(overrides(args))
    logs.configure(settings.log_level)
    node = Node(settings)
    node.start(load=False)
    try:
        node.load_bundle()
        print(
            f"edgerank: serving {node.holder.snapshot().version} on {node.target}",
            flush=True,
        )
        node.serve_until_signalled()
    finally:
        node.stop()
    return 0
