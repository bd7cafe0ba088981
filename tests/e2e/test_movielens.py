"""The MovieLens bundle: its gate and metrics, and ``edgerank eval`` reproducing them."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from tests.e2e.conftest import TrainedBundle, run_cli
from trainer.evaluate import MODELS

FIGURES = ("ndcg@10", "recall@10", "recall@100")


def test_the_gate_and_the_figures(movielens_bundle: TrainedBundle) -> None:
    m = movielens_bundle.manifest
    assert m["source"] == {"preset": "movielens"}
    assert m["counts"]["items"] == 9742
    gate = m["gates"]["student"]
    assert gate["passed"] is True and gate["users"] > 0
    assert gate["student"] >= (1 - gate["max_drop"]) * gate["teacher"]
    assert gate["student"] >= 0.98 * gate["teacher"]
    warm = m["metrics"]["warm"]
    assert warm["users"] > 400  # of the ~550 warm users, those with a positive in their tail
    assert warm["student"]["ndcg@10"] > warm["popularity"]["ndcg@10"]
    assert warm["teacher"]["ndcg@10"] > warm["popularity"]["ndcg@10"]
    for model in MODELS:
        lo, hi = warm[model]["ndcg@10_ci95"]
        assert lo <= warm[model]["ndcg@10"] <= hi
        assert 0.0 <= warm[model]["recall@10"] <= warm[model]["recall@100"] <= 1.0
    for model in ("retrieval", "teacher", "student"):
        assert 0.5 < warm[model]["auc"] <= 1.0
    cold = m["metrics"]["cold"]
    assert cold["users"] > 0
    assert {cold[model]["served_by"] for model in MODELS} == {"POPULARITY"}


@pytest.fixture(scope="module")
def evaluated(movielens_bundle: TrainedBundle) -> dict[str, Any]:
    result = run_cli(["eval", "--bundle-dir", movielens_bundle.root, "--json"])
    assert result.returncode == 0, result.stderr[-3000:]
    doc: dict[str, Any] = json.loads(result.stdout)  # one JSON document, nothing else on stdout
    return doc


def test_eval_prints_groups_models_and_figures(evaluated: dict[str, Any], movielens_bundle: TrainedBundle) -> None:
    assert evaluated["bundle_version"] == movielens_bundle.manifest["version"]
    for group in ("warm", "cold"):
        block = evaluated[group]
        assert isinstance(block["users"], int) and block["users"] > 0
        for model in ("popularity", "retrieval", "teacher", "student"):
            for figure in FIGURES:
                value = block[model][figure]
                assert isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0


def test_eval_reproduces_the_manifest(evaluated: dict[str, Any], movielens_bundle: TrainedBundle) -> None:
    """Same split, same bundle: the figures the trainer recorded."""
    recorded = movielens_bundle.manifest["metrics"]
    for group in ("warm", "cold"):
        assert evaluated[group]["users"] == recorded[group]["users"]
        for model in MODELS:
            assert evaluated[group][model]["ndcg@10"] == pytest.approx(recorded[group][model]["ndcg@10"], abs=1e-9), (
                group,
                model,
            )
            for figure in ("recall@10", "recall@100", "coverage@10"):
                assert evaluated[group][model][figure] == pytest.approx(recorded[group][model][figure], abs=1e-9)
    for model in ("retrieval", "teacher", "student"):
        assert evaluated["warm"][model]["auc"] == pytest.approx(recorded["warm"][model]["auc"], abs=1e-9)
    assert evaluated["pool_recall"] == pytest.approx(recorded["pool_recall"], abs=1e-12)
