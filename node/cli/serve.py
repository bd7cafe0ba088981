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
    parser.add_argument(
        "--follow",
        action="store_true",
        help="follow BUNDLE_DIR/assignment.json (written by edgerank replicate) and hot-swap bundles",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(overrides(args))
    logs.configure(settings.log_level)
    if settings.processes > 1:
        return serve_processes(settings, args.follow)
    node = Node(settings)
    node.start(load=False)
    try:
        if args.follow:
            return follow(node, settings)
        node.load_bundle()
        print(
            f"edgerank: serving {node.holder.snapshot().version} on {node.target}",
            flush=True,
        )
        node.serve_until_signalled()
    finally:
        node.stop()
    return 0


def serve_processes(settings: Settings, follow: bool) -> int:
    """``--processes N``: N server processes on one port; SIGTERM here stops them all."""
    from node.supervisor import Supervisor

    supervisor = Supervisor(settings, follow)
    try:
        serving = supervisor.start()
    except BaseException:
        supervisor.stop()
        raise
    print(
        f"edgerank: serving {serving} on {settings.host}:{supervisor.port} ({settings.processes} processes)",
        flush=True,
    )
    return supervisor.wait()


def follow(node: Node, settings: Settings) -> int:
    """Serve whatever the region's assignment names, swapping as it changes."""
    from node.assignment import AssignmentWatcher

    watcher = AssignmentWatcher(node, settings.bundle_dir).start()
    print(f"edgerank: following {settings.bundle_dir} on {node.target}", flush=True)
    try:
        node.serve_until_signalled()
    finally:
        watcher.stop()
    return 0
