"""``edgerank train``: build, gate and write a bundle from interaction data."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.cli.data_options import add_data_arguments
from trainer.errors import DataError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from trainer.exposures import LoggedRows

POOL_SIZE = 500
STUDENT_GATE = 0.02  # trainer.pipeline.TrainConfig's


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a bundle from interaction data")
    add_data_arguments(p)
    p.add_argument(
        "--bundle-dir", type=Path, default=Path("bundles"), help="bundle root to write into (default ./bundles)"
    )
    p.add_argument("--pool-size", type=int, default=POOL_SIZE, help="candidates per user (default 500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--student-gate",
        type=float,
        default=STUDENT_GATE,
        metavar="SHARE",
        help="the student ranker may trail the teacher's NDCG@10 by at most this share, in [0, 1) (default 0.02)",
    )
    p.add_argument(
        "--signing-key", default=None, help="sign the manifest with this ed25519 key (PEM) [EDGERANK_SIGNING_KEY]"
    )
    p.add_argument("--json", action="store_true", help="print the manifest's gates and metrics as JSON")
    p.add_argument(
        "--from-exposures",
        action="store_true",
        help="rank on the exposure log (served features joined with later events) from --nats-url",
    )
    p.add_argument("--nats-url", default=None, help="NATS with the exposure and event streams [EDGERANK_NATS_URL]")
    p.add_argument("--exposure-region", default="", help="only this region's exposures (default all)")
    p.add_argument(
        "--attribution-window-s", type=float, default=1800.0, help="events count as labels this long after (1800)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Heavy imports here, so that other commands start fast.
    from trainer.bundle import latest_version
    from trainer.cli.data_options import load_dataset
    from trainer.cli.report import metrics_table
    from trainer.pipeline import TrainConfig, train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.pool_size < 10:
        raise DataError(f"--pool-size must be at least 10, got {args.pool_size}")
    if not 0.0 <= args.student_gate < 1.0:
        raise DataError(f"--student-gate must be in [0, 1), got {args.student_gate}")
    key = _signing_key(args.signing_key)  # a bad key fails before training, not after
    logged = _logged_rows(args) if args.from_exposures else None
    dataset, source = load_dataset(args)
    if logged is not None:
        source = {**source, "exposures": logged.exposures, "exposure_groups": logged.groups_kept}
    config = replace(TrainConfig(), pool_size=args.pool_size, seed=args.seed, student_gate=args.student_gate)
    parent = latest_version(args.bundle_dir)
    trained = train(dataset, args.bundle_dir, config, parent=parent, source=source, logged=logged)
    m = trained.manifest
    if key is not None:
        from replicator.signing import sign_bundle

        m = sign_bundle(trained.bundle_dir, key)
    if args.json:
        print(
            json.dumps(
                {
                    "version": m["version"],
                    "path": str(trained.bundle_dir),
                    "gates": m["gates"],
                    "metrics": m["metrics"],
                },
                indent=2,
            )
        )
        return 0
    gate = m["gates"]["student"]
    print(f"bundle {m['version']} written to {trained.bundle_dir}")
    print(
        f"  model {m['model_version']}, parent {m['parent']}, "
        f"{m['counts']['items']} items, {m['counts']['users']} users"
    )
    print(
        f"  gate: student NDCG@10 {gate['student']:.4f} vs teacher {gate['teacher']:.4f} "
        f"(max drop {gate['max_drop']:.0%}): passed"
    )
    if key is not None:
        print(f"  signed by key {m['signature']['key_id']}")
    print(metrics_table(m["metrics"]))
    return 0


def _signing_key(flag: str | None) -> Ed25519PrivateKey | None:
    """The key from --signing-key, else EDGERANK_SIGNING_KEY (node.settings), else None: no signature."""
    from node.settings import Settings
    from replicator.signing import load_private

    path = Settings.load({"signing_key": flag}).signing_key
    return load_private(Path(path)) if path else None


def _logged_rows(args: argparse.Namespace) -> LoggedRows:
    import os

    from trainer.exposures import join, read_log

    url = args.nats_url or os.environ.get("EDGERANK_NATS_URL", "")
    if not url.startswith(("nats://", "tls://")):
        raise DataError(f"--from-exposures needs --nats-url (or EDGERANK_NATS_URL) as nats://host:port, got {url!r}")
    if not args.attribution_window_s > 0:
        raise DataError(f"--attribution-window-s must be positive, got {args.attribution_window_s}")
    exposures, events = read_log(url, args.exposure_region)
    return join(exposures, events, args.attribution_window_s)
