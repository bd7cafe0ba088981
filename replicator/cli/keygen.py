"""``edgerank keygen``: write an ed25519 key pair for signing bundles."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from replicator import signing


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("keygen", help="write an ed25519 key pair for signing bundles")
    parser.add_argument(
        "--out", type=Path, default=Path("keys/edgerank.key"), help="private key path (default %(default)s)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    private, public = signing.keygen(args.out)
    key_id = signing.key_id(signing.load_public(public))
    print(f"edgerank: wrote {private} (private, mode 0600) and {public} (public), key id {key_id}")
    return 0
