"""trainer.artifacts.view_index: the node's index, checked against the manifest like restore_index."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trainer.artifacts import IndexConfig, build_index, restore_index, view_index
from trainer.bundle import BundleError
from trainer.candidates import ann_search, index_search

N, DIM = 400, 8


@pytest.fixture
def index_path(tmp_path: Path) -> Path:
    emb = np.random.default_rng(0).standard_normal((N, DIM)).astype(np.float32)
    path = tmp_path / "index.usearch"
    build_index(emb, IndexConfig(expansion_search=40)).save(str(path))
    return path


SPEC: dict[str, Any] = {"metric": "ip", "expansion_search": 90}


def test_view_matches_restore(index_path: Path) -> None:
    viewed, restored = view_index(index_path, SPEC, DIM, N), restore_index(index_path, SPEC, DIM, N)
    assert viewed.expansion_search == restored.expansion_search == 90
    ours, theirs = ann_search(viewed), index_search(restored)
    for q in np.random.default_rng(1).standard_normal((30, DIM)).astype(np.float32):
        for a, b in zip(ours(q, 25), theirs(q, 25), strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("spec", "dim", "n", "message"),
    [
        (SPEC, DIM + 1, N, f"index has {DIM} dimensions, the embeddings {DIM + 1}"),
        (SPEC, DIM, N - 1, f"index holds {N} vectors for {N - 1} items"),
        ({"metric": "cos"}, DIM, N, "index metric is ip, the manifest says cos"),
        ({"expansion_search": 0}, DIM, N, "manifest index.expansion_search must be an integer >= 1, got 0"),
        ({"expansion_search": "64"}, DIM, N, "manifest index.expansion_search must be an integer >= 1, got '64'"),
    ],
)
def test_manifest_mismatches_are_refused(
    index_path: Path, spec: dict[str, Any], dim: int, n: int, message: str
) -> None:
    with pytest.raises(BundleError, match=f"^{re.escape(str(index_path))}: {re.escape(message)}"):
        view_index(index_path, spec, dim, n)


def test_a_file_that_is_not_an_index_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "index.usearch"
    path.write_bytes(b"\x00" * 1000)
    with pytest.raises(BundleError, match=f"^{re.escape(str(path))}: not a usearch index"):
        view_index(path, SPEC, DIM, N)
    with pytest.raises(BundleError, match=f"^{re.escape(str(tmp_path / 'nope.usearch'))}: No such file"):
        view_index(tmp_path / "nope.usearch", SPEC, DIM, N)
