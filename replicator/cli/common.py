"""Flags and plumbing shared by the replicator's commands."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from nats.aio.client import Client
from nats.js import JetStreamContext

from node.settings import Settings
from replicator.nats_io import connect

T = TypeVar("T")
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"

FLAGS = {
    "nats_url": ("--nats-url", "NATS server URL [EDGERANK_NATS_URL]"),
    "hub_domain": ("--hub-domain", "the hub's JetStream domain, '' for none [EDGERANK_HUB_DOMAIN]"),
    "region": ("--region", "region name [EDGERANK_REGION]"),
    "trusted_key": ("--trusted-key", "public key (PEM) bundles must be signed by [EDGERANK_TRUSTED_KEY]"),
    "signing_key": ("--key", "private key (PEM) to sign with [EDGERANK_SIGNING_KEY]"),
    "keep_versions": ("--keep", "verified versions kept on disk besides those assigned [EDGERANK_KEEP_VERSIONS]"),
    "keep_published": (
        "--keep",
        "published versions the hub keeps besides those a region uses; 0: no pruning [EDGERANK_KEEP_PUBLISHED]",
    ),
    "log_level": ("--log-level", "DEBUG, INFO, WARNING or ERROR [EDGERANK_LOG_LEVEL]"),
}


def add_flags(parser: argparse.ArgumentParser, *names: str) -> None:
    for name in names:
        flag, help_text = FLAGS[name]
        parser.add_argument(flag, dest=name, default=None, metavar=name.upper(), help=help_text)


def settings(args: argparse.Namespace) -> Settings:
    values = {name: getattr(args, name, None) for name in FLAGS}
    return Settings.load(values, flags={name: flag for name, (flag, _) in FLAGS.items()})


def run(coro: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(coro())  # type: ignore[arg-type]


async def hub(s: Settings) -> tuple[Client, JetStreamContext]:
    """A connection to ``nats_url`` and a JetStream context for the hub's domain."""
    nc = await connect(nats_url(s), "edgerank-cli", max_reconnect_attempts=2)
    return nc, nc.jetstream(domain=s.hub_domain or None, timeout=5.0)


def nats_url(s: Settings) -> str:
    return s.nats_url or DEFAULT_NATS_URL


def print_json(obj: Any) -> None:
    import json

    print(json.dumps(obj, indent=2, sort_keys=True, default=str))
