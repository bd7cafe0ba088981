"""End-to-end fixtures: bundles trained for real, once per session.

``synthetic_bundle`` trains on the generic CSV format (a synthetic catalog
written by :mod:`trainer.synth`); ``movielens_bundle`` trains on the MovieLens
copy the project carries. A bundle that fails its gate (``GateFailed``) fails
the tests that use it: it is never skipped.
"""

from __future__ import annotations

import os
import subprocess
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from trainer.bundle import read_manifest
from trainer.data import Dataset, load_generic
from trainer.pipeline import train, train_movielens
from trainer.synth import SynthConfig, write_synthetic

REPO = Path(__file__).resolve().parents[2]
CLI_TIMEOUT_S = 300


@dataclass(frozen=True)
class TrainedBundle:
    root: Path  # the bundle root (LATEST names bundle_dir)
    bundle_dir: Path
    manifest: dict[str, Any]


@dataclass(frozen=True)
class SyntheticBundle(TrainedBundle):
    interactions: Path
    items: Path
    dataset: Dataset


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(interactions.csv, items.csv) in the generic format, from ``SynthConfig()``."""
    return write_synthetic(tmp_path_factory.mktemp("synthetic-data"), SynthConfig())


@pytest.fixture(scope="session")
def synthetic_bundle(tmp_path_factory: pytest.TempPathFactory, synthetic_data: tuple[Path, Path]) -> SyntheticBundle:
    interactions, items = synthetic_data
    dataset = load_generic(interactions, items)
    root = tmp_path_factory.mktemp("synthetic-bundles")
    trained = train(dataset, root)
    return SyntheticBundle(root, trained.bundle_dir, trained.manifest, interactions, items, dataset)


@pytest.fixture(scope="session")
def movielens_bundle(tmp_path_factory: pytest.TempPathFactory) -> TrainedBundle:
    root = tmp_path_factory.mktemp("movielens-bundles")
    bundle_dir = train_movielens(root)
    return TrainedBundle(root, bundle_dir, read_manifest(bundle_dir))


def edgerank_bin() -> Path:
    """The ``edgerank`` console script of this interpreter's environment (.venv/bin/edgerank)."""
    return Path(sysconfig.get_path("scripts")) / "edgerank"


def run_cli(args: Sequence[str | Path], timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run ``edgerank ARGS`` as a subprocess from the repository root; never raises on exit codes."""
    # Hermetic: no EDGERANK_* settings from the caller's environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGERANK_")}
    return subprocess.run(
        [str(edgerank_bin()), *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
