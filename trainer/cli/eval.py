"""``edgerank eval``: evaluate a bundle on the protocol's warm and cold users."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from trainer.cli.data_options import add_data_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate a bundle (warm and cold users, four models)")
    add_data_arguments(p)
    p.add_argument("--bundle-dir", type=Path, default=Path("bundles"), help="a bundle, or a bundle root (its LATEST)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Heavy imports here, so that other commands start fast.
    import numpy as np

    from trainer import bundle as bundle_io
    from trainer.artifacts import load_artifacts
    from trainer.cli.data_options import load_dataset
    from trainer.cli.report import metrics_table
    from trainer.evaluate import evaluate
    from trainer.ranker_io import onnx_scores, ranker_session
    from trainer.split import protocol_split
    from trainer.teacher import load_teacher, teacher_scores

    logging.basicConfig(level=logging.WARNING)
    bundle_dir = bundle_io.resolve(args.bundle_dir)
    manifest = bundle_io.read_manifest(bundle_dir)
    bundle_io.verify_files(bundle_dir, manifest)
    dataset, _ = load_dataset(args, manifest.get("source"))
    split = protocol_split(dataset.interactions)
    artifacts = load_artifacts(bundle_dir, manifest)
    if list(dataset.catalog.item_ids) != np.load(bundle_dir / "item_ids.npy").tolist():
        raise bundle_io.BundleError(f"{bundle_dir} was trained on another catalog than the data given")
    booster = load_teacher(bundle_dir / "teacher.lgb.txt")
    student = ranker_session(bundle_dir / "ranker.onnx")
    pool = int(manifest.get("training", {}).get("config", {}).get("pool_size", 500))
    result = evaluate(
        artifacts,
        split.train,
        split.test_warm,
        split.test_cold,
        {"teacher": lambda x: teacher_scores(booster, x), "student": lambda x: onnx_scores(student, x)},
        pool,
    )
    result["bundle_version"] = manifest["version"]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"bundle {manifest['version']} ({manifest['model_version']}), pool {pool}")
        print(metrics_table(result))
    return 0
