"""Where training and evaluation data come from: flags shared by train and eval."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from trainer.data import MOVIELENS_SMALL, Dataset, load_generic, load_movielens
from trainer.errors import DataError


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data (generic CSV, or the MovieLens preset by default)")
    group.add_argument("--interactions", type=Path, help="interactions CSV: user_id,item_id,timestamp,rating|label")
    group.add_argument("--items", type=Path, help="items CSV: item_id,title,genres[,tags][,year]")
    group.add_argument(
        "--movielens", type=Path, metavar="DIR", help=f"a MovieLens directory (default {MOVIELENS_SMALL})"
    )
    group.add_argument(
        "--positive-threshold", type=float, default=4.0, help="ratings >= this are positives (default 4)"
    )


def load_dataset(args: argparse.Namespace, fallback: dict[str, Any] | None = None) -> tuple[Dataset, dict[str, Any]]:
    """The dataset the flags name, else ``fallback`` (a manifest's ``source``), else MovieLens."""
    if (args.interactions is None) != (args.items is None):
        raise DataError("--interactions and --items go together")
    if args.interactions is not None and args.movielens is not None:
        raise DataError("use either --interactions/--items or --movielens, not both")
    source: dict[str, Any]
    if args.interactions is not None:
        source = {
            "interactions": str(args.interactions.resolve()),
            "items": str(args.items.resolve()),
            "positive_threshold": args.positive_threshold,
        }
    elif args.movielens is not None:
        source = {"preset": "movielens", "path": str(args.movielens.resolve())}
    else:
        source = fallback or {"preset": "movielens"}
    if "interactions" in source:
        data = load_generic(
            Path(source["interactions"]),
            Path(source["items"]),
            positive_threshold=float(source.get("positive_threshold", 4.0)),
        )
    else:
        data = load_movielens(Path(source.get("path", MOVIELENS_SMALL)))
    return data, source
